"""CPU back end of the LUT layers: C++ loops (:mod:`dwn_hw.nn.native`) or, when they cannot be built (or
``USE_NATIVE`` is false), vectorized torch ops. Both compute the same thing.

The EFD input gradient of LUT ``j``, slot ``l`` at address ``a`` depends only on the table ``L[j]``,
on ``a`` without bit ``l`` and on ``l``. So instead of an O(n·2ⁿ) sum per sample and LUT, each backward
call computes the coefficient table ``C[j, a, l]`` once (a butterfly per bit over each table) and every
sample gathers.
"""
from __future__ import annotations

import torch

from . import native

USE_NATIVE = True


def _native():
    return native.library() if USE_NATIVE else None


def _ready(*tensors) -> bool:
    return all(t.is_contiguous() and t.device.type == "cpu" for t in tensors)


def _check_lut_args(mapping: torch.Tensor, luts: torch.Tensor) -> int:
    if mapping.dim() != 2 or luts.dim() != 2 or luts.shape[0] != mapping.shape[0]:
        raise ValueError(f"mapping {tuple(mapping.shape)} and luts {tuple(luts.shape)} do not match")
    n = mapping.shape[1]
    if luts.shape[1] != 1 << n:
        raise ValueError(f"luts has {luts.shape[1]} entries per LUT, expected 2**{n}")
    return n


def lut_forward(x: torch.Tensor, mapping: torch.Tensor, luts: torch.Tensor):
    """Read every LUT for every sample.

    Returns ``(out float [B, N], addr int64 [B, N])`` with ``addr = Σ_l (x[:, mapping[j, l]] > 0) << l``.
    """
    n = _check_lut_args(mapping, luts)
    num_luts = mapping.shape[0]
    lib = _native()
    if (lib is not None and x.dtype == torch.float32 and luts.dtype == torch.float32
            and mapping.dtype == torch.int32 and _ready(x, mapping, luts)):
        # the C loops index without bounds checks: a mapping loaded from a file must be checked here
        if mapping.numel() and (int(mapping.min()) < 0 or int(mapping.max()) >= x.shape[1]):
            raise IndexError(f"mapping holds input index {int(mapping.min())}..{int(mapping.max())} outside "
                             f"0..{x.shape[1] - 1}")
        out = torch.empty(x.shape[0], num_luts, dtype=torch.float32)
        addr = torch.empty(x.shape[0], num_luts, dtype=torch.int64)
        lib.dwn_lut_forward(x.data_ptr(), mapping.data_ptr(), luts.data_ptr(), x.shape[0], x.shape[1], num_luts, n,
                            out.data_ptr(), addr.data_ptr(), torch.get_num_threads())
        return out, addr
    bits = x[:, mapping.reshape(-1).long()] > 0                      # [B, N*n]
    weights = torch.tensor([1 << l for l in range(n)], dtype=torch.int64)
    addr = (bits.view(x.shape[0], num_luts, n).to(torch.int64) * weights).sum(-1)   # [B, N]
    flat = addr + torch.arange(num_luts, dtype=torch.int64).mul_(1 << n)
    out = luts.reshape(-1)[flat]
    return out, addr


def efd_coefficients(luts: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """Coefficient table ``C[j, a, l]`` (float ``[N, 2ⁿ, n]``): the input gradient of slot ``l`` per unit
    output gradient when LUT ``j`` was read at address ``a``.

    ``C[j, a, l] = α Σ_a' L[j, a'] β^popcount((a ⊕ a') & ~(1<<l)) (±1 by bit l of a')``. Pairing ``a'`` with
    ``a' ^ (1<<l)`` turns the sum into the difference table ``D = L[bit l = 1] − L[bit l = 0]`` smoothed by the
    kernel β^hamming over the other n−1 bits; that kernel is a product of 2×2 ``[[1, β], [β, 1]]`` factors,
    applied as one butterfly per bit: O(N·n²·2ⁿ) per call instead of O(B·N·n·2ⁿ).
    """
    num_luts, size = luts.shape
    n = size.bit_length() - 1
    # view dims: [N, bit n-1, ..., bit 0]; bit l lives in dim n - l
    table = luts.reshape(num_luts, *([2] * n))
    coef = torch.empty(num_luts, size, n, dtype=luts.dtype)
    coef_view = coef.view(num_luts, *([2] * n), n)
    for l in range(n):
        dim_l = n - l
        diff = table.select(dim_l, 1) - table.select(dim_l, 0)      # [N, 2 x (n-1)]
        for k in range(n):
            if k == l:
                continue
            d = n - k if k > l else n - k - 1                         # dim of bit k once dim_l is gone
            y0, y1 = diff.select(d, 0), diff.select(d, 1)
            diff = torch.stack((y0 + beta * y1, beta * y0 + y1), dim=d)
        coef_view[..., l] = (diff * alpha).unsqueeze(dim_l)          # the same for both values of bit l
    return coef


def lut_backward(grad_out, addr, x_needs_grad, mapping, luts, alpha, beta, input_size):
    """Gradients of :func:`lut_forward`: ``(grad_x [B, I] or None, grad_luts [N, 2ⁿ])``."""
    n = _check_lut_args(mapping, luts)
    num_luts, size = luts.shape
    batch = grad_out.shape[0]
    grad_out = grad_out.contiguous()
    lib = _native()
    if (lib is not None and grad_out.dtype == torch.float32 and luts.dtype == torch.float32
            and mapping.dtype == torch.int32 and addr.dtype == torch.int64 and _ready(addr, mapping, luts)):
        grad_luts = torch.zeros(num_luts, size, dtype=torch.float32)
        grad_x = torch.zeros(batch, input_size, dtype=torch.float32) if x_needs_grad else None
        lib.dwn_lut_backward(grad_out.data_ptr(), addr.data_ptr(), mapping.data_ptr(), luts.data_ptr(), float(alpha),
                             float(beta), batch, input_size, num_luts, n,
                             None if grad_x is None else grad_x.data_ptr(), grad_luts.data_ptr(),
                             torch.get_num_threads())
        return grad_x, grad_luts
    flat = addr.to(torch.int64) + torch.arange(num_luts, dtype=torch.int64).mul_(size)   # [B, N]
    grad_luts = torch.zeros(num_luts * size, dtype=grad_out.dtype)
    grad_luts.index_add_(0, flat.reshape(-1), grad_out.reshape(-1))
    grad_luts = grad_luts.view(num_luts, size)
    if not x_needs_grad:
        return None, grad_luts
    coef = efd_coefficients(luts.detach(), alpha, beta).view(num_luts * size, n)
    slot = coef[flat.reshape(-1)].view(batch, num_luts, n).mul_(grad_out.unsqueeze(-1))   # [B, N, n]
    grad_x = torch.zeros(batch, input_size, dtype=grad_out.dtype)
    grad_x.index_add_(1, mapping.reshape(-1).long(), slot.view(batch, num_luts * n))
    return grad_x, grad_luts


def mapping_backward(grad_out, x, weights, tau, x_needs_grad):
    """Gradients of ``x[:, weights.argmax(0)]`` the way torch-dwn defines them:
    ``grad_weights = (2x − 1)ᵀ @ grad_out``; ``grad_x = grad_out @ softmax(weights/tau, 0)ᵀ`` (or ``None``)."""
    grad_weights = (x * 2 - 1).t() @ grad_out
    grad_x = None
    if x_needs_grad:
        grad_x = grad_out @ torch.softmax(weights / tau, dim=0).t()
    return grad_x, grad_weights
