"""Each rule of the semantics contract (docs/design.md) as a test of the PyTorch layers."""
import numpy as np
import pytest
import torch

import dwn_hw as dwn
import dwn_hw.nn as dnn


def test_address_bit_order_slot0_is_lsb():
    # LUT 0 reads inputs (0, 1, 2); only input 1 set -> address 0b010 = 2
    mapping = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    layer = dnn.LUTLayer(3, 1, n=3, mapping=mapping, ste=False)
    with torch.no_grad():
        layer.luts.copy_(torch.arange(8, dtype=torch.float32).view(1, 8) / 10)
    for bits in range(8):
        x = torch.tensor([[float((bits >> l) & 1) for l in range(3)]])
        assert layer(x).item() == pytest.approx(bits / 10)


def test_table_output_is_strictly_positive_entry():
    layer = dnn.LUTLayer(1, 1, n=1, mapping=torch.zeros(1, 1, dtype=torch.int32))
    with torch.no_grad():
        layer.luts.copy_(torch.tensor([[0.0, 0.25]]))
    assert layer(torch.tensor([[0.0]])).item() == 0.0     # luts 0.0 is not > 0
    assert layer(torch.tensor([[1.0]])).item() == 1.0


def test_input_bit_is_strictly_positive():
    layer = dnn.LUTLayer(1, 1, n=1, mapping=torch.zeros(1, 1, dtype=torch.int32), ste=False)
    with torch.no_grad():
        layer.luts.copy_(torch.tensor([[-0.5, 0.5]]))
    assert layer(torch.tensor([[0.0]])).item() == -0.5
    assert layer(torch.tensor([[-1e-7]])).item() == -0.5
    assert layer(torch.tensor([[1e-7]])).item() == 0.5


def test_thermometer_strict_and_feature_major():
    enc = dnn.Thermometer(3).fit(np.array([[0.0, 10.0], [4.0, 50.0]], dtype=np.float32))
    # feature 0 thresholds 1, 2, 3; feature 1: 20, 30, 40
    torch.testing.assert_close(enc.thresholds, torch.tensor([[1.0, 2.0, 3.0], [20.0, 30.0, 40.0]]))
    bits = enc.binarize(np.array([[2.0, 40.0]], dtype=np.float32))
    # x_0 = 2 > (1, 2, 3) -> 1 0 0 (2 > 2 is false); x_1 = 40 -> 1 1 0
    assert bits.tolist() == [[1.0, 0.0, 0.0, 1.0, 1.0, 0.0]]


def test_group_sum_pads_with_zeros_and_groups_contiguously():
    gs = dnn.GroupSum(3, tau=2)
    h = torch.tensor([[1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 1.0]])   # 8 -> padded to 9: groups of 3
    assert gs(h).tolist() == [[1.0, 1.5, 0.5]]


def test_group_sum_randperm_buffer_permutes_and_is_saved():
    torch.manual_seed(0)
    gs = dnn.GroupSum(2, randperm=6)
    perm = gs.randperm.clone()
    assert sorted(perm.tolist()) == list(range(6)) and "randperm" in gs.state_dict()
    h = torch.arange(6, dtype=torch.float32).view(1, 6)
    expected = torch.stack([h[0, perm[:3]].sum(), h[0, perm[3:]].sum()]).view(1, 2)
    assert torch.equal(gs(h), expected)
    other = dnn.GroupSum(2)                # off: empty buffer, loading gives it the saved permutation
    assert other.randperm.numel() == 0
    other.load_state_dict(gs.state_dict())
    assert torch.equal(other.randperm, perm) and torch.equal(other(h), expected)


def test_group_sum_randperm_true_draws_on_first_forward():
    gs = dnn.GroupSum(2, randperm=True)
    out = gs(torch.ones(1, 5))
    assert gs.randperm.numel() == 5 and out.sum().item() == 5


def test_learnable_mapping_is_argmax_of_weights():
    torch.manual_seed(1)
    layer = dnn.LUTLayer(10, 4, n=3, mapping="learnable")
    hard = layer.hard_mapping()
    assert torch.equal(hard, layer.mapping.weights.argmax(0).view(4, 3))
    fixed = dnn.LUTLayer(10, 4, n=3, mapping=hard.to(torch.int32))
    with torch.no_grad():
        fixed.luts.copy_(layer.luts)
    x = (torch.rand(20, 10) > 0.5).float()
    assert torch.equal(layer(x), fixed(x))
    with torch.no_grad():                  # the cached argmax follows in-place changes of the weights
        layer.mapping.weights[:, 0] = 0
        layer.mapping.weights[7, 0] = 5
    assert layer.hard_mapping()[0, 0].item() == 7


def test_layer_mapping_uses_inputs_evenly_and_matches_seed():
    torch.manual_seed(2)
    m = dnn.layer_mapping(10, 3, 8)        # 24 slots: two full passes and 4 more
    counts = torch.bincount(m.view(-1).long(), minlength=10)
    assert m.dtype == torch.int32 and counts.min() >= 2 and counts.max() <= 3
    assert torch.equal(dnn.layer_mapping(10, 3, 8, random=False).view(-1)[:10], torch.arange(10, dtype=torch.int32))
    torch.manual_seed(2)
    assert torch.equal(dnn.layer_mapping(10, 3, 8), m)


def test_default_alpha_beta_and_clamp():
    layer = dwn.LUTLayer(5, 2, n=4)
    assert float(layer.alpha) == pytest.approx(0.5 * 0.75 ** 3)
    assert float(layer.beta) == pytest.approx(0.25 / 0.75)
    with torch.no_grad():
        layer.luts.mul_(5)
    layer.eval()
    layer(torch.ones(1, 5))
    assert layer.luts.abs().max() > 1          # no clamp in eval mode
    layer.train()
    layer(torch.ones(1, 5))
    assert layer.luts.abs().max() <= 1


def test_init_draws_like_torch_dwn():
    """Mapping first (whole randperm passes plus one cut short, even when it is cut to nothing), then the
    tables: ``torch.rand(N, 2**n)*2 - 1``."""
    torch.manual_seed(9)
    layer = dnn.LUTLayer(6, 3, n=2, mapping="random")
    torch.manual_seed(9)
    perm = [torch.randperm(6), torch.randperm(6)]
    luts = torch.rand(3, 4) * 2 - 1
    assert torch.equal(layer.mapping.view(-1), perm[0].to(torch.int32))
    assert torch.equal(layer.luts.detach(), luts)
    torch.manual_seed(9)
    lm = dnn.LUTLayer(6, 3, n=2, mapping="learnable")
    torch.manual_seed(9)
    weights = torch.rand(6, 6)
    assert torch.equal(lm.mapping.weights.detach(), weights)
    assert torch.equal(lm.luts.detach(), torch.rand(3, 4) * 2 - 1)
