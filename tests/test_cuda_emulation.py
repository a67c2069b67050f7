"""A line-by-line CPU emulation of the gather backward (``fused_backward_gather_kernel`` then
``gather_input_grad_kernel`` in dwn_hw/cuda/efd_kernels.cu) against the CPU back end: the warp butterfly
of the coefficients (lane = address, ``v += beta * shfl_xor(v, 1 << k)``), the per-warp staging of the
terms into ``terms[b, j*n + l]``, partial LUT tiles, and the sum over the mapping's inverse
(``dwn_hw.cuda.ops._inverse``). It checks the kernels' index arithmetic where no GPU is at hand."""
from __future__ import annotations

import pytest
import torch

from dwn_hw.cuda import ops
from dwn_hw.nn import cpu

TILE = 32          # kLutTile


def insert_zero_bit(r, pos):
    low = (1 << pos) - 1
    return ((r & ~low) << 1) | (r & low)


def remove_bit(a, pos):
    return ((a >> (pos + 1)) << pos) | (a & ((1 << pos) - 1))


def emulate_tile_coefficients(luts, j0, n, alpha, beta):
    """shared ``coef[(l*half + r)*TILE + ln]`` of one block, as the warp butterfly writes it."""
    half = 1 << (n - 1)
    num_luts = luts.shape[0]
    tile_luts = min(TILE, num_luts - j0)
    coef = torch.zeros(n * half * TILE, dtype=torch.float32)
    lanes = torch.arange(32)
    for p in range(n * TILE):
        l, ln = p // TILE, p % TILE
        v = torch.zeros(32, dtype=torch.float32)
        if ln < tile_luts:
            for lane in range(half):
                a0 = insert_zero_bit(lane, l)
                table = luts[j0 + ln]
                v[lane] = torch.tensor(alpha, dtype=torch.float32) * (table[a0 | (1 << l)] - table[a0])
        for k in range(n - 1):
            v = v + torch.tensor(beta, dtype=torch.float32) * v[lanes ^ (1 << k)]
        for lane in range(half):
            coef[(l * half + lane) * TILE + ln] = v[lane]
    return coef


def emulate_gather_backward(grad_out, addr, mapping, luts, alpha, beta, input_size, identity):
    batch, num_luts = grad_out.shape
    n = mapping.shape[1]
    half = 1 << (n - 1)
    terms = torch.full((batch, num_luts * n), float("nan"))      # every element must be written
    grad_luts = torch.zeros(num_luts, 1 << n)
    for j0 in range(0, num_luts, TILE):
        coef = emulate_tile_coefficients(luts, j0, n, alpha, beta)
        tile_luts = min(TILE, num_luts - j0)
        for b in range(batch):
            stage = torch.full((TILE * n,), float("nan"))
            for lane in range(tile_luts):
                j = j0 + lane
                g, a = float(grad_out[b, j]), int(addr[b, j])
                grad_luts[j, a] += g
                for l in range(n):
                    stage[lane * n + l] = g * coef[(l * half + remove_bit(a, l)) * TILE + lane]
            for k in range(tile_luts * n):      # the coalesced copy reads only the valid lanes' entries
                terms[b, j0 * n + k] = stage[k]
    if identity:
        return terms, grad_luts
    offsets, slots = ops._inverse(mapping, input_size)
    grad_x = torch.zeros(batch, input_size)
    for i in range(input_size):
        for k in range(int(offsets[i]), int(offsets[i + 1])):
            grad_x[:, i] += terms[:, int(slots[k])]
    return grad_x, grad_luts


@pytest.mark.parametrize("n,num_luts,identity", [(1, 3, False), (3, 40, False), (6, 35, True), (5, 33, False)])
def test_gather_emulation_matches_cpu_back_end(n, num_luts, identity):
    gen = torch.Generator().manual_seed(n * 100 + num_luts)
    batch = 5
    if identity:
        input_size = num_luts * n
        mapping = torch.arange(input_size, dtype=torch.int32).view(num_luts, n)
    else:
        input_size = max(2, num_luts * n // 3) + 3          # some inputs read by nobody, some twice
        mapping = torch.randint(0, input_size - 3, (num_luts, n), generator=gen, dtype=torch.int32)
    x = torch.randn(batch, input_size, generator=gen)
    luts = torch.rand(num_luts, 1 << n, generator=gen) * 2 - 1
    g = torch.randn(batch, num_luts, generator=gen)
    alpha, beta = 0.5 * 0.75 ** (n - 1), 0.25 / 0.75
    _, addr = cpu.lut_forward(x, mapping, luts)
    ref_gx, ref_gl = cpu.lut_backward(g, addr, True, mapping, luts, alpha, beta, input_size)
    gx, gl = emulate_gather_backward(g, addr, mapping, luts, alpha, beta, input_size, identity)
    assert not torch.isnan(gx).any()
    torch.testing.assert_close(gl, ref_gl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(gx, ref_gx, rtol=1e-5, atol=1e-6)
    if not identity:
        assert (gx[:, -3:] == 0).all()                       # unread inputs get exactly zero


def test_inverse_lists_each_inputs_slots_in_order():
    mapping = torch.tensor([[2, 0], [2, 2], [4, 1]], dtype=torch.int32)
    offsets, slots = ops._inverse(mapping, 6)
    assert offsets.tolist() == [0, 1, 2, 5, 5, 6, 6]
    assert slots.tolist() == [1, 5, 0, 2, 3, 4]
    with pytest.raises(ValueError, match="0, 4"):
        ops._inverse(mapping.clone(), 4)
