"""Autograd functions of a LUT layer: the EFD (extended finite difference) gradient and the STE."""
from __future__ import annotations

import torch

from . import backend


class EFDFunction(torch.autograd.Function):
    """``out[b, j] = luts[j, addr[b, j]]`` forward; EFD input gradient and scatter-add LUT gradient backward."""

    @staticmethod
    def forward(ctx, x, mapping, luts, alpha, beta):
        out, addr = backend.lut_forward(x.contiguous(), mapping, luts.contiguous())
        ctx.save_for_backward(addr, mapping, luts)
        ctx.alpha, ctx.beta, ctx.input_size = float(alpha), float(beta), x.shape[1]
        return out

    @staticmethod
    def backward(ctx, grad_out):
        addr, mapping, luts = ctx.saved_tensors
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[2]):
            return None, None, None, None, None
        grad_x, grad_luts = backend.lut_backward(grad_out.contiguous(), addr, ctx.needs_input_grad[0], mapping,
                                                 luts, ctx.alpha, ctx.beta, ctx.input_size)
        if not ctx.needs_input_grad[2]:
            grad_luts = None
        return grad_x, None, grad_luts, None, None


class STEFunction(torch.autograd.Function):
    """``(x > 0).float()`` forward, identity backward (straight-through estimator)."""

    @staticmethod
    def forward(ctx, x):
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return grad_out
