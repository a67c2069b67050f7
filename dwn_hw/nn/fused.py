"""Fused optimizer step for ``LearnableMapping.weights`` on the CPU.

The mapping's weight gradient ``(2x − 1)ᵀ g`` is a large, skinny product (28 M entries at the MNIST
shape). Materialising it, then running Adam over it, then an argmax over the weights reads and writes
that state several times. Instead, ``loss.backward()`` only records ``(x, g)`` and marks the weights'
``.grad`` with a zero-stride placeholder; a global optimizer step hook then computes the gradient tile by
tile in C++, applies Adam (or AdamW) in the same pass and records each column's argmax for the next
forward. The user's loop stays ``zero_grad(); loss.backward(); optimizer.step()``.

Fallbacks, so results never depend on the path taken:

- any other optimizer (or Adam with ``amsgrad``/``capturable``/``differentiable``) gets a real ``.grad``
  just before its step, computed with the vectorized code;
- ``zero_grad()`` drops the placeholder and with it the recorded gradient;
- ``materialize_grads(model)`` gives real ``.grad`` tensors now (for clipping or inspecting gradients);
- set ``dwn_hw.nn.fused.enabled = False`` to turn the whole mechanism off;
- if the C++ library cannot be built, a warning says so once and the vectorized code runs.

The C++ code lives in ``csrc/`` and is built on first use by :mod:`dwn_hw.nn.native`.

The optimizer state is Adam's own (``step``, ``exp_avg``, ``exp_avg_sq``), so checkpoints of the
optimizer load either way.
"""
from __future__ import annotations

import weakref

import torch

from . import backend
from .native import library

enabled = True

_pending_modules: "weakref.WeakSet" = weakref.WeakSet()
_all_modules: "weakref.WeakSet" = weakref.WeakSet()
_in_step: dict = {}
_hooks = None
_closure_steps = 0        # optimizer steps running a closure: its backward must give real gradients

# binary inputs (thermometer bits) use the sparse product when at most this fraction of them is set
# (measured break-even against the dense register kernel: about 0.25-0.3; MNIST's DistributiveThermometer(3)
# bits are 0.16 set)
SPARSE_DENSITY = 0.25
# backward passes kept per module before the gradient is materialised (weights no optimizer steps)
MAX_PENDING = 16


# ---------------------------------------------------------------------------------------------------------
# backward side


class DeferredGrad:
    """One mapping's recorded weight gradients: the ``(x, grad_out)`` pairs of its backward passes since the
    last optimizer step, and the zero-stride placeholder put into ``weights.grad`` while they wait.

    ``LearnableMapping`` holds one as ``.deferred``; only this module reads or changes it.
    """

    def __init__(self):
        self.pending: list = []
        self.marker = None

    def __len__(self) -> int:
        return len(self.pending)

    def clear(self) -> None:
        self.pending.clear()
        self.marker = None

    def holds_placeholder(self, weights: torch.Tensor) -> bool:
        """Whether ``weights.grad`` is still this record's placeholder (``zero_grad()`` drops it)."""
        return weights.grad is self.marker

    def start(self, weights: torch.Tensor) -> None:
        """Put the placeholder into ``weights.grad`` (first recorded pass since the last step)."""
        self.marker = torch.zeros(1, dtype=weights.dtype).expand(weights.shape)
        weights.grad = self.marker

    def record(self, x: torch.Tensor, grad_out: torch.Tensor) -> None:
        # a copy of x: the caller may reuse its input buffer before the optimizer step (autograd would not care)
        self.pending.append((x.detach().to(torch.float32, copy=True), grad_out.detach().to(torch.float32)))

    def take(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The recorded passes joined into one ``(x, grad_out)``; the record is empty afterwards."""
        xs, gs = zip(*self.pending)
        self.clear()
        x = xs[0] if len(xs) == 1 else torch.cat(xs)
        g = gs[0] if len(gs) == 1 else torch.cat(gs)
        return x, g


def defer(module, x: torch.Tensor, grad_out: torch.Tensor) -> bool:
    """Record the weight gradient of ``module`` for the optimizer hook; ``False`` means compute it now."""
    w = module.weights
    rec = module.deferred
    if not enabled or _closure_steps or w.device.type != "cpu" or torch.is_grad_enabled() or w.dtype != torch.float32:
        return False
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return False                         # DDP must see real gradients to all-reduce them
    if len(rec) and not rec.holds_placeholder(w):
        rec.clear()                          # zero_grad() dropped the placeholder
    if w.grad is not None and not rec.holds_placeholder(w):
        return False                         # a real gradient is there: accumulate densely
    if library() is None:
        return False
    if len(rec) >= MAX_PENDING:
        # many backward passes and no optimizer step over these weights: hold a real gradient instead of
        # an ever longer list (later passes then accumulate into it densely)
        materialize(module)
        return False
    if not len(rec):
        rec.start(w)
    rec.record(x, grad_out)
    _pending_modules.add(module)
    register_hooks()
    return True


def _take_pending(module):
    _pending_modules.discard(module)
    return module.deferred.take()


def _live(module) -> bool:
    """Whether ``module`` has a recorded gradient whose placeholder is still in ``.grad``."""
    rec = module.deferred
    if not len(rec):
        return False
    if not rec.holds_placeholder(module.weights):
        rec.clear()
        return False
    return True


def materialize(module) -> None:
    """Replace the placeholder ``.grad`` of ``module.weights`` with the real gradient."""
    if not _live(module):
        return
    x, g = _take_pending(module)
    _, grad_w = backend.mapping_backward(g.contiguous(), x, module.weights.detach(), module.tau, False)
    module.weights.grad = grad_w


def materialize_grads(model: torch.nn.Module) -> None:
    """Give every learnable mapping in ``model`` a real ``.grad`` now (before clipping or inspecting)."""
    for sub in model.modules():
        if sub in _pending_modules:        # every module with a recorded gradient is there (see defer)
            materialize(sub)


# ---------------------------------------------------------------------------------------------------------
# optimizer side


def track(module) -> None:
    """Watch optimizer steps for ``module`` (a LearnableMapping): its cached argmax must be dropped after
    any step that updates its weights, because ``Adam(fused=True)`` updates in place without bumping the
    tensor's version counter."""
    _all_modules.add(module)
    register_hooks()


def register_hooks() -> None:
    """Register the global optimizer step hooks (once). ``LearnableMapping`` calls this when it is built
    (or unpickled), so the hooks exist before any optimizer can step over its weights: a step whose
    closure runs the first forward and backward must already be seen by the pre-step hook (its
    backward then gives real gradients). Importing :mod:`dwn_hw.nn` registers nothing."""
    global _hooks
    if _hooks is None:
        from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook
        _hooks = (register_optimizer_step_pre_hook(_pre_step), register_optimizer_step_post_hook(_post_step))


def _fusable(optimizer, group) -> bool:
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return False
    if group.get("amsgrad") or group.get("capturable") or group.get("differentiable"):
        return False
    lr = group["lr"]
    return not (isinstance(lr, torch.Tensor) and lr.numel() != 1)


def _pre_step(optimizer, args, kwargs):
    global _closure_steps
    if args or kwargs.get("closure") is not None:
        _closure_steps += 1
    if not _pending_modules:
        return
    owner = {id(m.weights): m for m in list(_pending_modules)}
    fused = []
    for group in optimizer.param_groups:
        for p in group["params"]:
            module = owner.get(id(p))
            if module is None or not _live(module):
                continue
            if _fusable(optimizer, group):
                p.grad = None                # the optimizer skips it; _post_step updates it
                fused.append((module, group))
            else:
                materialize(module)
    if fused:
        _in_step[id(optimizer)] = fused


def _post_step(optimizer, args, kwargs):
    global _closure_steps
    if args or kwargs.get("closure") is not None:
        _closure_steps = max(0, _closure_steps - 1)
    done = set()
    for module, group in _in_step.pop(id(optimizer), ()):
        x, g = _take_pending(module)
        _adam_step(optimizer, group, module, x, g)
        done.add(id(module))
    if _all_modules:
        params = {id(p) for group in optimizer.param_groups for p in group["params"]}
        for module in list(_all_modules):
            if id(module) not in done and id(module.weights) in params:
                module.invalidate_hard_mapping()


def _adam_step(optimizer, group, module, x, g):
    w = module.weights
    state = optimizer.state[w]
    if len(state) == 0:
        state["step"] = torch.tensor(0.0, dtype=torch.float32)
        state["exp_avg"] = torch.zeros_like(w, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(w, memory_format=torch.preserve_format)
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    if not (w.is_contiguous() and exp_avg.is_contiguous() and exp_avg_sq.is_contiguous()):
        raise RuntimeError("dwn_hw fused mapping update needs contiguous weights and Adam state")
    state["step"] += 1
    step = float(state["step"])
    beta1, beta2 = (float(b) for b in group["betas"])
    lr = float(group["lr"])
    decoupled = type(optimizer) is torch.optim.AdamW or bool(group.get("decoupled_weight_decay", False))
    signs = (x * 2 - 1).t().contiguous()                     # [I, B]
    g = g.contiguous()
    in_size, out_size = w.shape
    batch = g.shape[0]
    adam = (lr, beta1, beta2, float(group["eps"]), float(group["weight_decay"]), int(decoupled),
            int(bool(group.get("maximize", False))), 1.0 - beta1 ** step, 1.0 - beta2 ** step, torch.get_num_threads())
    lib = library()
    bits = bits_ptr = None
    if x.numel() and bool(((x == 0) | (x == 1)).all()):
        # thermometer bits: G[i] = 2·Σ_{x[b,i]=1} g[b] − Σ_b g[b], one add per set bit
        xt = x.t() > 0.5                                         # [I, B]
        count = xt.sum(dim=1)
        if float(count.sum()) <= SPARSE_DENSITY * x.numel():
            bits = xt.nonzero()[:, 1].to(torch.int32).contiguous()
            bits_ptr = torch.zeros(in_size + 1, dtype=torch.int64)
            torch.cumsum(count, 0, out=bits_ptr[1:])
    argmax = torch.empty(out_size, dtype=torch.int64)
    with torch.no_grad():
        lib.dwn_mapping_adam_argmax(
            signs.data_ptr(), g.data_ptr(), in_size, batch, out_size, w.data_ptr(), exp_avg.data_ptr(),
            exp_avg_sq.data_ptr(), argmax.data_ptr(), *adam,
            None if bits is None else bits.data_ptr(), None if bits_ptr is None else bits_ptr.data_ptr())
    # the weights changed behind autograd's back: bump their version so stale uses are caught
    torch.autograd.graph.increment_version(w)
    module.set_hard_mapping(argmax)
