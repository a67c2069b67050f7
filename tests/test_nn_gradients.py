"""LUT-layer and learnable-mapping gradients against a brute-force loop over torch-dwn's formulas."""
import math

import pytest
import torch

import dwn_hw.nn as dnn
import dwn_hw.nn.native
from dwn_hw.nn import backend, cpu, fused


def brute_force_efd(x, mapping, luts, alpha, beta, grad_out):
    """Direct loops: address, LUT gradient (scatter) and EFD input gradient."""
    batch, num_luts, n = x.shape[0], mapping.shape[0], mapping.shape[1]
    grad_x = torch.zeros(x.shape, dtype=torch.float64)
    grad_luts = torch.zeros(luts.shape, dtype=torch.float64)
    out = torch.zeros(batch, num_luts, dtype=torch.float64)
    for b in range(batch):
        for j in range(num_luts):
            a = 0
            for l in range(n):
                if x[b, int(mapping[j, l])] > 0:
                    a |= 1 << l
            out[b, j] = luts[j, a]
            g = float(grad_out[b, j])
            grad_luts[j, a] += g
            for l in range(n):
                total = 0.0
                for a2 in range(2 ** n):
                    dist = bin((a ^ a2) & ~(1 << l)).count("1")
                    term = float(luts[j, a2]) * alpha * beta ** dist
                    total += term if (a2 >> l) & 1 else -term
                grad_x[b, int(mapping[j, l])] += g * total
    return out, grad_x, grad_luts


@pytest.fixture(params=["native", "torch"])
def cpu_path(request, monkeypatch):
    """Run a test on the C++ loops and on the vectorized torch code."""
    if request.param == "native" and dwn_hw.nn.native.library() is None:
        pytest.skip("C++ kernels could not be built")
    monkeypatch.setattr(cpu, "USE_NATIVE", request.param == "native")
    return request.param


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_efd_gradients_match_brute_force(n, cpu_path):
    gen = torch.Generator().manual_seed(100 + n)
    batch, input_size, num_luts = 5, 9, 4
    x = torch.randn(batch, input_size, generator=gen)
    mapping = torch.randint(0, input_size, (num_luts, n), generator=gen, dtype=torch.int32)
    luts = torch.rand(num_luts, 2 ** n, generator=gen) * 2 - 1
    alpha, beta = 0.5 * 0.75 ** (n - 1), 0.25 / 0.75
    grad_out = torch.randn(batch, num_luts, generator=gen)
    ref_out, ref_gx, ref_gl = brute_force_efd(x, mapping, luts, alpha, beta, grad_out)

    out, addr = backend.lut_forward(x, mapping, luts)
    assert torch.equal(out.double(), ref_out)
    grad_x, grad_luts = backend.lut_backward(grad_out, addr, True, mapping, luts, alpha, beta, input_size)
    torch.testing.assert_close(grad_luts.double(), ref_gl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grad_x.double(), ref_gx, rtol=1e-4, atol=1e-5)
    none_x, grad_luts2 = backend.lut_backward(grad_out, addr, False, mapping, luts, alpha, beta, input_size)
    assert none_x is None and torch.equal(grad_luts, grad_luts2)


@pytest.mark.parametrize("n", [2, 6])
def test_layer_autograd_matches_brute_force(n, cpu_path):
    """Through the module: ste=False so the output gradient reaches EFD unchanged; custom alpha/beta."""
    torch.manual_seed(n)
    layer = dnn.LUTLayer(7, 3, n=n, mapping="random", alpha=0.3, beta=0.6, ste=False, clamp_luts=False)
    x = torch.randn(4, 7, requires_grad=True)
    grad_out = torch.randn(4, 3)
    out = layer(x)
    out.backward(grad_out)
    ref_out, ref_gx, ref_gl = brute_force_efd(x.detach(), layer.mapping, layer.luts.detach(), 0.3, 0.6, grad_out)
    torch.testing.assert_close(out.detach().double(), ref_out)
    torch.testing.assert_close(x.grad.double(), ref_gx, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.luts.grad.double(), ref_gl, rtol=1e-5, atol=1e-6)


def test_native_and_torch_paths_agree_at_n8(monkeypatch):
    if dwn_hw.nn.native.library() is None:
        pytest.skip("C++ kernels could not be built")
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(6, 30, generator=gen)
    mapping = torch.randint(0, 30, (5, 8), generator=gen, dtype=torch.int32)
    luts = torch.rand(5, 256, generator=gen) * 2 - 1
    grad_out = torch.randn(6, 5, generator=gen)
    results = []
    for native in (True, False):
        monkeypatch.setattr(cpu, "USE_NATIVE", native)
        out, addr = cpu.lut_forward(x, mapping, luts)
        results.append((out, addr) + cpu.lut_backward(grad_out, addr, True, mapping, luts, 0.2, 0.45, 30))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_efd_coefficients_large_n_match_formula():
    """n = 8: the butterfly against the direct sum for a few (LUT, address, slot) triples."""
    gen = torch.Generator().manual_seed(7)
    n = 8
    luts = torch.rand(2, 2 ** n, generator=gen, dtype=torch.float64) * 2 - 1
    coef = cpu.efd_coefficients(luts, 0.7, 0.4)
    for j, a, l in [(0, 0, 0), (1, 255, 7), (0, 0b10110010, 3), (1, 77, 5)]:
        direct = sum(float(luts[j, a2]) * 0.7 * 0.4 ** bin((a ^ a2) & ~(1 << l)).count("1") * (1 if (a2 >> l) & 1 else -1)
                     for a2 in range(2 ** n))
        assert math.isclose(float(coef[j, a, l]), direct, rel_tol=1e-9, abs_tol=1e-12)


def test_ste_binarises_forward_and_passes_gradient():
    layer = dnn.LUTLayer(4, 3, n=2, mapping="arange")
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0]], requires_grad=True)
    out = layer(x)
    assert set(out.detach().unique().tolist()) <= {0.0, 1.0}
    raw = dnn.LUTLayer(4, 3, n=2, mapping=layer.mapping.clone(), ste=False)
    with torch.no_grad():
        raw.luts.copy_(layer.luts)
    assert torch.equal(out.detach(), (raw(x.detach()) > 0).float())
    out.sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    raw(x2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad)        # identity STE gradient


def brute_force_mapping(x, weights, tau, grad_out):
    in_size, out_size = weights.shape
    soft = torch.softmax(weights.double() / tau, dim=0)
    grad_w = torch.zeros(in_size, out_size, dtype=torch.float64)
    grad_x = torch.zeros(x.shape, dtype=torch.float64)
    for b in range(x.shape[0]):
        for i in range(in_size):
            for o in range(out_size):
                grad_w[i, o] += (2 * float(x[b, i]) - 1) * float(grad_out[b, o])
                grad_x[b, i] += float(grad_out[b, o]) * float(soft[i, o])
    return grad_x, grad_w


def test_learnable_mapping_forward_is_argmax_and_gradients_match():
    torch.manual_seed(3)
    lm = dnn.LearnableMapping(6, 5, tau=0.5)
    x = (torch.rand(4, 6) > 0.5).float().requires_grad_(True)
    out = lm(x)
    assert torch.equal(out.detach(), x.detach()[:, lm.weights.detach().argmax(0)])
    grad_out = torch.randn(4, 5)
    out.backward(grad_out)
    fused.materialize_grads(lm)            # the weight gradient may be deferred to the optimizer step
    ref_gx, ref_gw = brute_force_mapping(x.detach(), lm.weights.detach(), 0.5, grad_out)
    torch.testing.assert_close(lm.weights.grad.double(), ref_gw, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), ref_gx, rtol=1e-5, atol=1e-5)


def test_learnable_mapping_skips_input_gradient_when_not_needed():
    torch.manual_seed(4)
    lm = dnn.LearnableMapping(6, 5)
    x = (torch.rand(3, 6) > 0.5).float()
    grad_out = torch.randn(3, 5)
    lm(x).backward(grad_out)
    fused.materialize_grads(lm)
    _, ref_gw = brute_force_mapping(x, lm.weights.detach(), 0.001, grad_out)
    torch.testing.assert_close(lm.weights.grad.double(), ref_gw, rtol=1e-5, atol=1e-5)
    grad_x, grad_w = backend.mapping_backward(grad_out, x, lm.weights.detach(), 0.001, False)
    assert grad_x is None


def test_learnable_layer_gradients_flow_to_weights_and_luts():
    torch.manual_seed(5)
    layer = dnn.LUTLayer(8, 4, n=3, mapping="learnable", ste=False, clamp_luts=False)
    x = (torch.rand(6, 8) > 0.5).float()
    grad_out = torch.randn(6, 4)
    layer(x).backward(grad_out)
    fused.materialize_grads(layer)
    hard = layer.hard_mapping().to(torch.int32)
    gathered = x[:, hard.view(-1).long()]
    slots = torch.arange(12, dtype=torch.int32).view(4, 3)
    _, ref_slot_grad, ref_gl = brute_force_efd(gathered, slots, layer.luts.detach(), float(layer.alpha),
                                               float(layer.beta), grad_out)
    _, ref_gw = brute_force_mapping(x, layer.mapping.weights.detach(), 0.001, ref_slot_grad.float())
    torch.testing.assert_close(layer.luts.grad.double(), ref_gl, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(layer.mapping.weights.grad.double(), ref_gw, rtol=1e-4, atol=1e-5)
