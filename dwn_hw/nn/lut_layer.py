"""LUTLayer: a layer of n-input lookup tables trained with EFD (torch-dwn's API and parameter names)."""
from __future__ import annotations

import torch

from dwn_hw.errors import DwnHwError, show

from .efd import EFDFunction, STEFunction
from .mapping import LearnableMapping, check_size, layer_mapping

_DUMMY_KEY = "_LUTLayer__dummy_mapping"   # torch-dwn's unused learnable-mapping placeholder


class LUTLayer(torch.nn.Module):
    """``output_size`` LUTs of ``n`` inputs each.

    Parameters
    ----------
    input_size, output_size, n : int
        Layer inputs, number of LUTs, inputs per LUT (each table has ``2**n`` entries).
    mapping : {'random', 'arange', 'learnable'} or int32 Tensor [output_size, n]
        Which input each LUT slot reads. ``'random'``/``'arange'`` spread the inputs evenly (see
        :func:`layer_mapping`); ``'learnable'`` makes ``self.mapping`` a :class:`LearnableMapping`.
    alpha, beta : float, optional
        EFD gradient scale and decay; torch-dwn's defaults ``0.5·0.75**(n−1)`` and ``0.25/0.75``.
    ste : bool
        Binarise the output (``luts[j, a] > 0``) in the forward pass, identity gradient.
    clamp_luts : bool
        Clamp the tables to [−1, 1] before each training-mode forward.
    lm_tau : float
        Softmax temperature of the learnable mapping's input gradient.

    LUT ``j`` reads address ``a = Σ_l (x[:, mapping[j, l]] > 0) << l`` (slot 0 is the least significant bit).
    """

    def __init__(self, input_size, output_size, n, mapping="random", alpha=None, beta=None, ste=True,
                 clamp_luts=True, lm_tau=0.001):
        super().__init__()
        input_size = check_size("LUTLayer input_size", input_size)
        output_size = check_size("LUTLayer output_size", output_size)
        n = check_size("LUTLayer n", n)
        if n > 20:
            raise DwnHwError(f"LUTLayer n={n} is too large (tables of 2**n entries; at most 20)")
        if not isinstance(ste, bool):
            raise TypeError(f"LUTLayer ste must be a bool, not {ste!r}")
        if not isinstance(clamp_luts, bool):
            raise TypeError(f"LUTLayer clamp_luts must be a bool, not {clamp_luts!r}")
        self.input_size, self.output_size, self.n = input_size, output_size, n
        self.ste, self.clamp_luts = ste, clamp_luts
        self.alpha = torch.tensor(_float("alpha", 0.5 * 0.75 ** (n - 1) if alpha is None else alpha))
        self.beta = torch.tensor(_float("beta", 0.25 / 0.75 if beta is None else beta))

        # the mapping is drawn before the tables, as torch-dwn does, so a seed gives the same layer
        if isinstance(mapping, torch.Tensor):
            if mapping.dtype != torch.int32:
                raise TypeError(f"LUTLayer mapping must be an int32 tensor, not {mapping.dtype}")
            if tuple(mapping.shape) != (output_size, n):
                raise DwnHwError(f"LUTLayer mapping has shape {tuple(mapping.shape)}, expected "
                                 f"{(output_size, n)} (output_size, n)")
            if mapping.numel() and (int(mapping.min()) < 0 or int(mapping.max()) >= input_size):
                raise DwnHwError(f"LUTLayer mapping holds index {int(mapping.min())}..{int(mapping.max())} "
                                 f"outside 0..{input_size - 1}")
            self.register_buffer("mapping", mapping.detach().clone())
        elif isinstance(mapping, str) and mapping == "learnable":
            self.mapping = LearnableMapping(input_size, output_size * n, tau=lm_tau)
        elif isinstance(mapping, str) and mapping in ("random", "arange"):
            self.register_buffer("mapping", layer_mapping(input_size, n, output_size, random=mapping == "random"))
        else:
            raise DwnHwError(f"LUTLayer mapping must be 'random', 'arange', 'learnable' or an int32 tensor "
                             f"[{output_size}, {n}], not {mapping!r}")
        # the learnable path gathers x itself, then reads LUT j's slots at j*n .. j*n+n-1
        self.register_buffer("_slot_mapping", torch.arange(output_size * n, dtype=torch.int32).view(output_size, n),
                             persistent=False)
        self.luts = torch.nn.Parameter(torch.rand(output_size, 2 ** n, dtype=torch.float32) * 2 - 1)

    @property
    def learnable(self) -> bool:
        return isinstance(self.mapping, LearnableMapping)

    def hard_mapping(self) -> torch.Tensor:
        """The mapping in force (LongTensor ``[output_size, n]``); learnable: ``weights.argmax(0)``."""
        if self.learnable:
            return self.mapping.hard_mapping().view(self.output_size, self.n)
        return self.mapping.long()

    def forward(self, x):
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise DwnHwError(f"LUTLayer expects input [batch, {self.input_size}], got {tuple(x.shape)}")
        if self.training and self.clamp_luts:
            with torch.no_grad():
                self.luts.clamp_(-1, 1)
        if self.learnable:
            x = self.mapping(x)
            mapping = self._slot_mapping
        else:
            mapping = self.mapping
        x = EFDFunction.apply(x, mapping, self.luts, self.alpha, self.beta)
        if self.ste:
            x = STEFunction.apply(x)
        return x

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # torch-dwn saves an unused placeholder next to a learnable mapping: accept and ignore it
        if prefix + _DUMMY_KEY in unexpected_keys:
            unexpected_keys.remove(prefix + _DUMMY_KEY)

    def extra_repr(self):
        mapping = "learnable" if self.learnable else "fixed"
        return (f"input_size={self.input_size}, output_size={self.output_size}, n={self.n}, mapping={mapping}, "
                f"alpha={float(self.alpha):.6g}, beta={float(self.beta):.6g}, ste={self.ste}, "
                f"clamp_luts={self.clamp_luts}")


def _float(name, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"LUTLayer {name} must be a float, not {show(value)}")
    return float(value)
