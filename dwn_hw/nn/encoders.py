"""Thermometer encoders: feature ``f`` becomes ``T`` bits ``x_f > θ_{f,t}`` (strict), flattened feature-major.

Thresholds are fitted as torch-dwn does: ``Thermometer`` spaces them uniformly between the minimum and the
maximum, ``DistributiveThermometer`` takes quantiles of the data, ``GaussianThermometer`` takes normal
quantiles from the mean and standard deviation. All arithmetic is float32 (what the model and the hardware
see). Inputs may be numpy arrays or torch tensors, ``[N, F]`` (more trailing dims are flattened into features).
"""
from __future__ import annotations

import numpy as np
import torch

from dwn_hw.errors import DwnHwError

from .mapping import check_size


def _as_features(x, what: str) -> torch.Tensor:
    """``x`` as a float32 CPU-or-device tensor ``[N, F]``."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    elif not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(np.asarray(x))
        except Exception:
            raise TypeError(f"{what} needs a numpy array or torch tensor, not {type(x).__name__}") from None
    if x.dim() < 2:
        raise DwnHwError(f"{what} needs data shaped [samples, features], got shape {tuple(x.shape)}")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{what} needs real numbers, not {x.dtype}")
    return x.reshape(x.shape[0], -1).to(torch.float32)


class Thermometer:
    """Uniform thermometer: ``θ_t = min + t·(max − min)/(T + 1)``, ``t = 1..T``.

    Parameters
    ----------
    num_bits : int
        Bits (thresholds) per feature, ``T``.
    feature_wise : bool
        Fit each feature on its own (thresholds ``[F, T]``) or all features together (``[1, T]``).
    """

    kind = "uniform"

    def __init__(self, num_bits=1, feature_wise=True):
        self.num_bits = check_size(f"{type(self).__name__} num_bits", num_bits)
        if not isinstance(feature_wise, bool):
            raise TypeError(f"{type(self).__name__} feature_wise must be a bool, not {feature_wise!r}")
        self.feature_wise = feature_wise
        self.thresholds = None

    def get_thresholds(self, x: torch.Tensor) -> torch.Tensor:
        """Thresholds ``[F, T]`` (or ``[1, T]``) fitted on float32 data ``[N, F]``."""
        lo = x.min(dim=0).values if self.feature_wise else x.min().reshape(1)
        hi = x.max(dim=0).values if self.feature_wise else x.max().reshape(1)
        steps = torch.arange(1, self.num_bits + 1, dtype=torch.float32, device=x.device)
        return lo.unsqueeze(-1) + steps.unsqueeze(0) * ((hi - lo) / (self.num_bits + 1)).unsqueeze(-1)

    def fit(self, x):
        """Fit the thresholds on training data; returns ``self``."""
        x = _as_features(x, f"{type(self).__name__}.fit")
        if x.shape[0] == 0:
            raise DwnHwError(f"{type(self).__name__}.fit got no samples")
        self.thresholds = self.get_thresholds(x).to(torch.float32).contiguous()
        return self

    def binarize(self, x) -> torch.Tensor:
        """Float bits ``[N, F·T]``: bit ``f·T + t`` is ``x_f > θ_{f,t}``."""
        if self.thresholds is None:
            raise DwnHwError(f"{type(self).__name__} is not fitted: call .fit(x_train) before .binarize(x)")
        x = _as_features(x, f"{type(self).__name__}.binarize")
        features = self.thresholds.shape[0]
        if features != 1 and x.shape[1] != features:
            raise DwnHwError(f"{type(self).__name__} was fitted on {features} features, got {x.shape[1]}")
        bits = x.unsqueeze(-1) > self.thresholds.to(x.device)
        return bits.to(torch.float32).reshape(x.shape[0], -1)

    @property
    def num_features(self):
        """Features the thresholds are fitted for (``None`` before fitting or when not feature-wise)."""
        if self.thresholds is None or not self.feature_wise:
            return None
        return self.thresholds.shape[0]

    def get_state(self) -> dict:
        """Plain values and tensors that :meth:`from_state` turns back into this encoder."""
        return {"kind": self.kind, "num_bits": self.num_bits, "feature_wise": self.feature_wise,
                "thresholds": None if self.thresholds is None else self.thresholds.detach().cpu().clone()}

    @staticmethod
    def from_state(state: dict) -> "Thermometer":
        """Rebuild an encoder (of the right class) from :meth:`get_state`'s dict."""
        kinds = {cls.kind: cls for cls in (Thermometer, DistributiveThermometer, GaussianThermometer)}
        kind = state.get("kind")
        if kind not in kinds:
            raise DwnHwError(f"unknown thermometer kind {kind!r} (expected one of {sorted(kinds)})")
        enc = kinds[kind](state["num_bits"], state["feature_wise"])
        thresholds = state.get("thresholds")
        if thresholds is not None:
            thresholds = torch.as_tensor(np.asarray(thresholds) if not isinstance(thresholds, torch.Tensor)
                                         else thresholds).to(torch.float32)
            if thresholds.dim() != 2 or thresholds.shape[1] != enc.num_bits:
                raise DwnHwError(f"thermometer thresholds have shape {tuple(thresholds.shape)}, expected "
                                 f"[features, {enc.num_bits}]")
            enc.thresholds = thresholds.contiguous()
        return enc

    def __repr__(self):
        fitted = "unfitted" if self.thresholds is None else f"thresholds={tuple(self.thresholds.shape)}"
        return f"{type(self).__name__}(num_bits={self.num_bits}, feature_wise={self.feature_wise}, {fitted})"


class DistributiveThermometer(Thermometer):
    """Quantile thermometer: ``θ_t`` is the sorted data's element ``int(N·t/(T + 1))``."""

    kind = "distributive"

    def get_thresholds(self, x):
        data = torch.sort(x, dim=0).values if self.feature_wise else torch.sort(x.reshape(-1, 1), dim=0).values
        index = torch.tensor([int(data.shape[0] * t / (self.num_bits + 1)) for t in range(1, self.num_bits + 1)],
                             device=x.device)
        return data[index].t()


class GaussianThermometer(Thermometer):
    """Normal thermometer: ``θ_t = mean + std·Φ⁻¹(t/(T + 1))`` (unbiased std)."""

    kind = "gaussian"

    def get_thresholds(self, x):
        skew = torch.distributions.Normal(0.0, 1.0).icdf(
            torch.arange(1, self.num_bits + 1, dtype=torch.float32) / (self.num_bits + 1)).to(x.device)
        mean = x.mean(dim=0) if self.feature_wise else x.mean().reshape(1)
        std = x.std(dim=0) if self.feature_wise else x.std().reshape(1)
        return std.unsqueeze(-1) * skew.unsqueeze(0) + mean.unsqueeze(-1)
