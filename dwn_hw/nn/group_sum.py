"""GroupSum: popcount per class group, divided by a temperature."""
from __future__ import annotations

import torch

from dwn_hw.errors import DwnHwError, show


class GroupSum(torch.nn.Module):
    """Sum contiguous groups of the last layer's outputs, one group per class.

    Parameters
    ----------
    k : int
        Number of groups (classes).
    tau : float
        The sums are divided by ``tau`` (a softmax temperature for the loss).
    randperm : bool, int or LongTensor
        Permute the inputs first: ``h[:, randperm]`` (position ``i`` takes input ``randperm[i]``).
        ``False``/``0``/``None``: no permutation. An int ``m`` draws ``torch.randperm(m)`` now (torch-dwn's
        meaning); ``True`` draws one on the first forward, sized to its input. Unlike torch-dwn the permutation
        is a buffer, so it is saved with the model.

    Inputs are zero-padded to a multiple of ``k``; class ``c`` owns the ``c``-th contiguous group.
    """

    def __init__(self, k, tau=1, randperm=False):
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(f"GroupSum k must be an int, not {show(k)}")
        if k <= 0:
            raise DwnHwError(f"GroupSum k must be positive, not {show(k)}")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
            raise DwnHwError(f"GroupSum tau must be a positive number, not {show(tau)}")
        self.k = k
        self.tau = tau
        self._draw_on_first_forward = randperm is True
        if isinstance(randperm, torch.Tensor):
            perm = randperm.detach().to(torch.int64).reshape(-1)
            if not torch.equal(torch.sort(perm).values, torch.arange(perm.numel())):
                raise DwnHwError(f"GroupSum randperm is not a permutation of 0..{perm.numel() - 1}")
        elif randperm is None or randperm is False or randperm is True:
            perm = torch.empty(0, dtype=torch.int64)
        elif isinstance(randperm, int) and randperm > 0:
            perm = torch.randperm(randperm)
        elif isinstance(randperm, int) and randperm == 0:
            perm = torch.empty(0, dtype=torch.int64)
        else:
            raise DwnHwError(f"GroupSum randperm must be a bool, a positive int or a LongTensor, not {randperm!r}")
        self.register_buffer("randperm", perm)

    @property
    def permutation_pending(self) -> bool:
        """``randperm=True`` and no forward pass has drawn the permutation yet (nothing to freeze)."""
        return self._draw_on_first_forward and self.randperm.numel() == 0

    def forward(self, x):
        if self._draw_on_first_forward and self.randperm.numel() == 0:
            self.randperm = torch.randperm(x.shape[-1]).to(x.device)
        if self.randperm.numel():
            if self.randperm.numel() != x.shape[-1]:
                raise DwnHwError(f"GroupSum randperm has {self.randperm.numel()} entries but the input has "
                                 f"{x.shape[-1]} features")
            x = x[..., self.randperm]
        pad = (-x.shape[-1]) % self.k
        if pad:
            x = torch.nn.functional.pad(x, (0, pad))
        return x.view(*x.shape[:-1], self.k, x.shape[-1] // self.k).sum(dim=-1) / self.tau

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # the saved permutation may differ in length from ours (empty when off): take its shape
        saved = state_dict.get(prefix + "randperm")
        if saved is not None and saved.shape != self.randperm.shape:
            self.randperm = torch.empty_like(saved, device=self.randperm.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
        # torch-dwn's GroupSum saves nothing: keep the permutation this module was built with
        if prefix + "randperm" in missing_keys:
            missing_keys.remove(prefix + "randperm")

    def extra_repr(self):
        return f"k={self.k}, tau={self.tau}, randperm={self.randperm.numel() > 0}"
