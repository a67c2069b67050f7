"""Which layer input each LUT slot reads: fixed mappings and the learnable mapping."""
from __future__ import annotations

import operator

import torch

from dwn_hw.errors import DwnHwError, show

from . import backend, fused


def layer_mapping(input_size: int, n: int, output_size: int, random: bool = True) -> torch.Tensor:
    """A fixed mapping (int32 ``[output_size, n]``) that uses every input as evenly as possible.

    Slots are filled with whole passes over the inputs (``torch.randperm(input_size)`` each when ``random``,
    else ``arange``), the last pass cut short. This draws random numbers in the same order as torch-dwn,
    so the same seed gives the same mapping.
    """
    def one_pass():
        return torch.randperm(input_size) if random else torch.arange(input_size)

    full, rest = divmod(n * output_size, input_size)
    parts = [one_pass() for _ in range(full)]
    parts.append(one_pass()[:rest])
    return torch.cat(parts).reshape(output_size, n).to(torch.int32)


class LearnableMappingFunction(torch.autograd.Function):
    """Forward: hard selection ``x[:, weights.argmax(0)]``. Backward (torch-dwn's rule):
    ``grad_weights = (2x − 1)ᵀ g`` and ``grad_x = g · softmax(weights / tau, 0)ᵀ``."""

    @staticmethod
    def forward(ctx, x, weights, module):
        ctx.module = module
        ctx.x_needs_grad = ctx.needs_input_grad[0]
        # weights are only read again for the softmax input gradient; skip saving them otherwise
        ctx.save_for_backward(x, weights if ctx.x_needs_grad else None)
        return torch.index_select(x, 1, module.hard_mapping())   # much faster than x[:, idx] on the CPU

    @staticmethod
    def backward(ctx, grad_out):
        x, weights = ctx.saved_tensors
        module = ctx.module
        grad_out = grad_out.contiguous()
        need_w = ctx.needs_input_grad[1]
        if need_w and module.defer_weight_grad(x, grad_out):
            need_w = False                     # an optimizer hook applies it (see dwn_hw.nn.fused)
        grad_x = grad_w = None
        if need_w:
            w = weights if weights is not None else module.weights
            grad_x, grad_w = backend.mapping_backward(grad_out, x, w, module.tau, ctx.x_needs_grad)
        elif ctx.x_needs_grad:
            grad_x = grad_out @ torch.softmax(weights / module.tau, dim=0).t()
        return grad_x, grad_w, None


class LearnableMapping(torch.nn.Module):
    """A mapping learnt by gradient descent: output ``i`` reads input ``weights[:, i].argmax()``.

    Parameters
    ----------
    input_size : int
        Number of inputs to choose from.
    output_size : int
        Number of outputs (``N · n`` when it feeds a LUT layer of ``N`` LUTs with ``n`` inputs).
    tau : float
        Softmax temperature of the input gradient.
    """

    def __init__(self, input_size, output_size, tau=0.001):
        super().__init__()
        input_size = check_size("LearnableMapping input_size", input_size)
        output_size = check_size("LearnableMapping output_size", output_size)
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 0:
            raise DwnHwError(f"LearnableMapping tau must be a positive number, not {show(tau)}")
        self.input_size, self.output_size, self.tau = int(input_size), int(output_size), float(tau)
        self.weights = torch.nn.Parameter(torch.rand(input_size, output_size, dtype=torch.float32))
        self.deferred = fused.DeferredGrad()   # weight gradients recorded for the fused optimizer step
        self.allowed = None                    # BoolTensor [input_size] when restrict_inputs() capped the inputs
        self._argmax = None                    # (key, LongTensor) cache of weights.argmax(0)
        fused.register_hooks()                 # before any optimizer step over these weights (see there)

    def __setstate__(self, state):
        super().__setstate__(state)
        fused.register_hooks()                 # an unpickled mapping never ran __init__

    # -- the hard mapping ---------------------------------------------------------------------------

    def hard_mapping(self) -> torch.Tensor:
        """``weights.argmax(0)`` over the allowed inputs (LongTensor ``[output_size]``), cached until the
        weights change (a new version, storage or shape, or any optimizer step over them)."""
        w = self.weights
        key = (w.data_ptr(), w._version, w.shape)
        if self._argmax is None or self._argmax[0] != key:
            fused.track(self)                  # so optimizer steps drop this cache
            self._argmax = (key, self._masked_argmax(w.detach()))
        return self._argmax[1]

    def set_hard_mapping(self, argmax: torch.Tensor) -> None:
        """Record an argmax computed while the weights were updated (the fused optimizer step). When the
        inputs are restricted and the given argmax picks an excluded input, it is computed again here."""
        w = self.weights
        if self.allowed is not None and not bool(self.allowed[argmax.to(self.allowed.device)].all()):
            argmax = self._masked_argmax(w.detach())
        self._argmax = ((w.data_ptr(), w._version, w.shape), argmax)

    def invalidate_hard_mapping(self) -> None:
        """Drop the cached argmax (an optimizer updated the weights in place without a version bump)."""
        self._argmax = None

    @property
    def has_cached_mapping(self) -> bool:
        return self._argmax is not None

    def _masked_argmax(self, w: torch.Tensor) -> torch.Tensor:
        if self.allowed is None:
            return w.argmax(dim=0)
        return w.masked_fill(~self.allowed.to(w.device).unsqueeze(1), float("-inf")).argmax(dim=0)

    # -- restricting the inputs ---------------------------------------------------------------------

    def restrict_inputs(self, allowed) -> None:
        """Let the hard mapping pick only the inputs in ``allowed`` (indices, or a bool mask ``[input_size]``;
        None lifts the restriction). The weights stay as they are; only the argmax is masked, so every
        output reads one of the allowed inputs from now on."""
        if allowed is None:
            self.allowed = None
        else:
            a = torch.as_tensor(allowed)
            if a.dtype != torch.bool:
                idx = a.to(torch.int64).reshape(-1)
                if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= self.input_size:
                    raise DwnHwError(f"allowed inputs must be a non-empty set of indices in 0..{self.input_size - 1}")
                a = torch.zeros(self.input_size, dtype=torch.bool)
                a[idx] = True
            if tuple(a.shape) != (self.input_size,) or not bool(a.any()):
                raise DwnHwError(f"allowed inputs must be a non-empty bool mask [{self.input_size}]")
            self.allowed = a.to(self.weights.device)
        self._argmax = None

    def allowed_inputs(self) -> list[int] | None:
        """The allowed input indices (sorted), or None when unrestricted."""
        return None if self.allowed is None else torch.nonzero(self.allowed).reshape(-1).tolist()

    def input_usage(self) -> torch.Tensor:
        """How many outputs read each input under the current hard mapping (int64 ``[input_size]``)."""
        return torch.bincount(self.hard_mapping().cpu(), minlength=self.input_size)

    def defer_weight_grad(self, x, grad_out) -> bool:
        """Hand the weight gradient to the fused optimizer step; False: the caller computes it now."""
        return fused.defer(self, x, grad_out)

    def _apply(self, fn, *args, **kwargs):
        out = super()._apply(fn, *args, **kwargs)
        if self.allowed is not None:
            self.allowed = self.allowed.to(self.weights.device)
        return out

    def forward(self, x):
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise DwnHwError(f"LearnableMapping expects input [batch, {self.input_size}], got {tuple(x.shape)}")
        return LearnableMappingFunction.apply(x, self.weights, self)

    def extra_repr(self):
        cap = "" if self.allowed is None else f", allowed={int(self.allowed.sum())}"
        return f"input_size={self.input_size}, output_size={self.output_size}, tau={self.tau}{cap}"


def check_size(name, value) -> int:
    """``value`` as a positive int (numpy and torch integers welcome), else a TypeError/ValueError naming it."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {show(value)}")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, not {show(value)}") from None
    if number <= 0:
        raise DwnHwError(f"{name} must be positive, not {show(value)}")
    return number
