"""Device dispatch for the LUT-layer kernels.

CPU tensors run :mod:`dwn_hw.nn.cpu`; CUDA tensors run :mod:`dwn_hw.cuda.ops` (same names and
signatures, see docs/internals.md "Back ends") and fall back to the CPU code, with one warning, when the
CUDA extension cannot be built.
"""
from __future__ import annotations

import warnings

import torch

from . import cpu

_cuda_ops = None
_cuda_checked = False


def _cuda():
    """The CUDA ops module, or ``None`` (warned once) when it is not usable."""
    global _cuda_ops, _cuda_checked
    if not _cuda_checked:
        _cuda_checked = True
        reason = None
        try:
            import dwn_hw.cuda as cuda_pkg
            if cuda_pkg.available():
                from dwn_hw.cuda import ops
                _cuda_ops = ops
            else:
                reason = "dwn_hw.cuda.available() is false"
        except Exception as exc:  # a missing or broken extension must not stop training
            reason = f"{type(exc).__name__}: {exc}"
        if _cuda_ops is None:
            warnings.warn(f"dwn_hw: CUDA LUT kernels unavailable ({reason}); using the CPU code on CUDA tensors "
                          "(slow: copies every call)", RuntimeWarning, stacklevel=3)
    return _cuda_ops


def _on_cpu(fn, *args):
    """Run a CPU kernel on CUDA tensors by copying (the fallback path)."""
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    moved = [a.cpu() if isinstance(a, torch.Tensor) else a for a in args]
    result = fn(*moved)
    return tuple(r.to(device) if isinstance(r, torch.Tensor) else r for r in result)


def lut_forward(x, mapping, luts):
    """``(out float [B, N], addr int [B, N])``; see docs/internals.md."""
    if x.is_cuda:
        ops = _cuda()
        if ops is not None:
            return ops.lut_forward(x, mapping, luts)
        return _on_cpu(cpu.lut_forward, x, mapping, luts)
    return cpu.lut_forward(x, mapping, luts)


def lut_backward(grad_out, addr, x_needs_grad, mapping, luts, alpha, beta, input_size):
    """``(grad_x float [B, I] or None, grad_luts float [N, 2ⁿ])``; see docs/internals.md."""
    args = (grad_out, addr, bool(x_needs_grad), mapping, luts, float(alpha), float(beta), int(input_size))
    if grad_out.is_cuda:
        ops = _cuda()
        if ops is not None:
            return ops.lut_backward(*args)
        return _on_cpu(cpu.lut_backward, *args)
    return cpu.lut_backward(*args)


def mapping_backward(grad_out, x, weights, tau, x_needs_grad):
    """``(grad_x float [B, I] or None, grad_weights float [I, M])``; see docs/internals.md."""
    args = (grad_out, x, weights, float(tau), bool(x_needs_grad))
    if grad_out.is_cuda:
        ops = _cuda()
        if ops is not None:
            return ops.mapping_backward(*args)
        return _on_cpu(cpu.mapping_backward, *args)
    return cpu.mapping_backward(*args)
