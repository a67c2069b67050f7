"""CUDA back end: the functions of :mod:`dwn_hw.nn.cpu` (same names and signatures) on CUDA tensors.

See docs/internals.md "Back ends". ``addr`` is int32 here; it only ever travels back to
:func:`lut_backward`. The learnable mapping's backward is two GEMMs, which cuBLAS does better than a
hand-written kernel, so :func:`mapping_backward` is torch ops.
"""
from __future__ import annotations

import os
import weakref

import torch

from . import loader

# id(mapping) -> (weak reference, (data_ptr, version, shape), is identity); see _is_identity
_identity_cache: dict = {}
# id(mapping) -> (weak reference, (data_ptr, version, shape, input_size), (offsets, slots)); see _inverse
_inverse_cache: dict = {}

# Input-gradient algorithm of lut_backward for n <= 6 (see efd_kernels.h): "gather" (terms stored
# coalesced, then summed per input over the cached inverse mapping; no atomics, no zero fill) or "atomic"
# (the first fused kernel: global atomics into a zero-filled grad_x). DWN_HW_CUDA_BACKWARD picks it at
# import; the GPU check sets this variable to time both.
ALGOS = {"atomic": 1, "gather": 2}
BACKWARD_ALGO = os.environ.get("DWN_HW_CUDA_BACKWARD", "gather")
if BACKWARD_ALGO not in ALGOS:
    raise ValueError(f"DWN_HW_CUDA_BACKWARD must be one of {sorted(ALGOS)}, got {BACKWARD_ALGO!r}")


def _ext():
    ext = loader._module or loader.load()     # the lock-free read is the per-call path
    if ext is None:
        raise RuntimeError(f"dwn_hw CUDA kernels unavailable: {loader.error()}")
    return ext


# The layers already pass float32 / int32 contiguous tensors: skip the conversions then (each torch call
# costs microseconds, which is what a batch-32 step is made of).
def _f32(t: torch.Tensor) -> torch.Tensor:
    if t.dtype is torch.float32 and t.is_contiguous():
        return t
    return t.detach().to(torch.float32).contiguous()


def _i32(t: torch.Tensor) -> torch.Tensor:
    if t.dtype is torch.int32 and t.is_contiguous():
        return t
    return t.detach().to(torch.int32).contiguous()


def lut_forward(x: torch.Tensor, mapping: torch.Tensor, luts: torch.Tensor):
    """Read every LUT for every sample.

    Returns ``(out float [B, N], addr int32 [B, N])``: ``out[b, j] = luts[j, addr[b, j]]`` with
    ``addr = Σ_l (x[b, mapping[j, l]] > 0) << l``.
    """
    return _ext().forward(_f32(x), _i32(mapping), _f32(luts))


def efd_coefficients(luts: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """EFD input-gradient coefficients, float ``[N, n, 2^(n-1)]`` indexed by the address without bit l.

    ``C[j, l, r] = α Σ_a' L[j, a'] β^popcount((a ⊕ a') & ~(1<<l)) (±1 by bit l of a')`` for any ``a`` whose
    other bits, packed in order, equal ``r``. (The CPU back end's ``C[j, a, l]`` is this table expanded.)
    """
    n = luts.shape[1].bit_length() - 1
    return _ext().coefficients(_f32(luts), n, float(alpha), float(beta))


def lut_backward(grad_out, addr, x_needs_grad, mapping, luts, alpha, beta, input_size):
    """Gradients of :func:`lut_forward`: ``(grad_x float [B, I] or None, grad_luts float [N, 2ⁿ])``.

    ``grad_luts`` is the scatter-add of ``grad_out`` at ``addr``; ``grad_x`` follows the EFD formula, with
    the coefficients computed once per call and gathered per sample (O(n) per sample and LUT). For
    ``n <= 6`` one kernel launch does it all with a learnable mapping's slot order
    (``mapping[j, l] == j*n + l``: plain stores); with another mapping the ``"gather"`` algorithm adds a
    second launch that sums each input's terms over the mapping's inverse (built once per mapping tensor).
    """
    mapping = _i32(mapping)
    input_size = int(input_size)
    x_needs_grad = bool(x_needs_grad)
    algo = ALGOS[BACKWARD_ALGO]
    identity = x_needs_grad and _is_identity(mapping, input_size)
    offsets = slots = None
    if x_needs_grad and not identity and algo == ALGOS["gather"] and mapping.shape[1] <= 6:
        offsets, slots = _inverse(mapping, input_size)
    return _ext().backward(_f32(grad_out), _i32(addr), mapping, _f32(luts), float(alpha), float(beta),
                           input_size, x_needs_grad, identity, algo, offsets, slots)


def _inverse(mapping: torch.Tensor, input_size: int):
    """The mapping's inverse in CSR form: ``(offsets int32 [I + 1], slots int32 [N*n])``, the flat slot
    indices ``j*n + l`` that read input ``i`` being ``slots[offsets[i]:offsets[i + 1]]`` in increasing order.

    Built on the mapping's device once per mapping tensor (one sync, for the entry check) and kept while
    the same tensor object lives with the same storage and version counter, as in :func:`_is_identity`.
    """
    state = (mapping.data_ptr(), mapping._version, tuple(mapping.shape), input_size)
    hit = _inverse_cache.get(id(mapping))
    if hit is not None and hit[0]() is mapping and hit[1] == state:
        return hit[2]
    flat = mapping.reshape(-1).to(torch.int64)
    if flat.numel():
        low, high = int(flat.min()), int(flat.max())
        if low < 0 or high >= input_size:
            raise ValueError(f"mapping entries must lie in [0, {input_size}), got {low}..{high}")
    slots = torch.argsort(flat, stable=True).to(torch.int32)
    counts = torch.bincount(flat, minlength=input_size)
    offsets = torch.zeros(input_size + 1, dtype=torch.int32, device=mapping.device)
    offsets[1:] = torch.cumsum(counts, 0).to(torch.int32)
    result = (offsets, slots)
    if len(_inverse_cache) > 256:
        _inverse_cache.clear()
    _inverse_cache[id(mapping)] = (weakref.ref(mapping), state, result)
    return result


def _is_identity(mapping: torch.Tensor, input_size: int) -> bool:
    """Whether ``mapping[j, l] == j*n + l`` and ``input_size == N*n`` (a learnable mapping's slot order):
    the input gradient then has one term per input and is stored without atomics or zero fill.

    The content check syncs with the GPU once per mapping tensor; the answer is kept while the same tensor
    object lives with the same storage and version counter (in-place edits bump the version).
    """
    num_luts, n = mapping.shape
    if input_size != num_luts * n:
        return False
    state = (mapping.data_ptr(), mapping._version, tuple(mapping.shape))
    hit = _identity_cache.get(id(mapping))
    if hit is not None and hit[0]() is mapping and hit[1] == state:
        return hit[2]
    expect = torch.arange(mapping.numel(), dtype=mapping.dtype, device=mapping.device).view(num_luts, n)
    result = bool(torch.equal(mapping, expect))
    if len(_identity_cache) > 256:
        _identity_cache.clear()
    _identity_cache[id(mapping)] = (weakref.ref(mapping), state, result)
    return result


def mapping_backward(grad_out, x, weights, tau, x_needs_grad):
    """Gradients of ``x[:, weights.argmax(0)]`` (torch-dwn's rule), on cuBLAS:
    ``grad_weights = (2x − 1)ᵀ @ grad_out``; ``grad_x = grad_out @ softmax(weights/tau, 0)ᵀ`` or ``None``."""
    grad_out = grad_out.detach()
    x = x.detach()
    # one GEMM that reads a transposed view: the [I, M] result is written once
    grad_weights = torch.mm((x * 2 - 1).t(), grad_out)
    grad_x = None
    if x_needs_grad:
        grad_x = torch.mm(grad_out, torch.softmax(weights.detach() / tau, dim=0).t())
    return grad_x, grad_weights


def baseline_forward(x: torch.Tensor, mapping: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """torch-dwn's forward algorithm (benchmark baseline only): ``out float [B, N]``."""
    return _ext().baseline_forward(_f32(x), _i32(mapping), _f32(luts))


def baseline_backward(x, mapping, luts, alpha, beta, grad_out):
    """torch-dwn's O(n·2ⁿ)-per-sample backward algorithm (benchmark baseline only): ``(grad_x, grad_luts)``."""
    return _ext().baseline_backward(_f32(x), _i32(mapping), _f32(luts), float(alpha), float(beta),
                                    _f32(grad_out))
