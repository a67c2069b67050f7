"""The fused mapping update (C++ gradient + Adam + argmax) against the plain autograd + optimizer path."""
import copy

import pytest
import torch
from torch import nn
from torch.nn.functional import cross_entropy

import dwn_hw as dwn
from dwn_hw.nn import fused

pytestmark = pytest.mark.skipif(fused.library() is None, reason="fused CPU library could not be built")


def _model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(dwn.LUTLayer(42, 30, n=4, mapping="learnable"), dwn.LUTLayer(30, 20, n=3),
                         dwn.GroupSum(5, tau=1 / 0.3))


def _data(seed, batch=16):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 42, generator=g) > 0.5).float(), torch.randint(0, 5, (batch,), generator=g)


def _train(model, make_opt, use_fused, steps=4, accumulate=1):
    fused.enabled = use_fused
    try:
        opt = make_opt(model.parameters())
        for step in range(steps):
            opt.zero_grad()
            for k in range(accumulate):
                x, y = _data(100 * step + k)
                cross_entropy(model(x), y).backward()
            if use_fused:
                assert model[0].mapping.weights.grad is None or model[0].mapping.weights.grad.stride() == (0, 0)
            opt.step()
        return opt
    finally:
        fused.enabled = True


@pytest.mark.parametrize("make_opt", [
    lambda p: torch.optim.Adam(p, lr=1e-2),
    lambda p: torch.optim.Adam(p, lr=1e-2, fused=True),
    lambda p: torch.optim.Adam(p, lr=3e-3, betas=(0.8, 0.99), weight_decay=0.1, maximize=True),
    lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.05),
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),          # not fusable: real .grad before the step
    lambda p: torch.optim.Adam(p, lr=1e-2, amsgrad=True),        # not fusable either
], ids=["adam", "adam-fused", "adam-options", "adamw", "sgd", "amsgrad"])
def test_fused_matches_plain(make_opt):
    _compare(make_opt, 1)


@pytest.mark.parametrize("density", [0.0, 1.0])
def test_fused_dense_product_matches_plain(monkeypatch, density):
    """Binary inputs normally take the sparse product; force the dense one (and the all-sparse one)."""
    monkeypatch.setattr(fused, "SPARSE_DENSITY", density)
    _compare(lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=0.01), 1)


def test_fused_non_binary_inputs_match_plain():
    """A learnable mapping fed real numbers uses (2x − 1) as it is: the dense product."""
    plain, fast = _model(7), _model(7)
    x = torch.randn(8, 42)
    y = torch.randint(0, 5, (8,))
    for model, use in ((plain, False), (fast, True)):
        fused.enabled = use
        try:
            opt = torch.optim.Adam(model.parameters(), lr=1e-2)
            cross_entropy(model(x), y).backward()
            opt.step()
        finally:
            fused.enabled = True
    torch.testing.assert_close(fast[0].mapping.weights, plain[0].mapping.weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make_opt", [lambda p: torch.optim.Adam(p, lr=1e-2), lambda p: torch.optim.SGD(p, lr=0.1)],
                         ids=["adam", "sgd"])
def test_fused_matches_plain_with_gradient_accumulation(make_opt):
    _compare(make_opt, 2)


def _compare(make_opt, accumulate):
    plain, fast = _model(0), _model(0)
    opt_plain = _train(plain, make_opt, False, accumulate=accumulate)
    opt_fast = _train(fast, make_opt, True, accumulate=accumulate)
    w_plain, w_fast = plain[0].mapping.weights, fast[0].mapping.weights
    torch.testing.assert_close(w_fast, w_plain, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast[0].luts, plain[0].luts, rtol=1e-5, atol=1e-6)
    assert torch.equal(fast[0].hard_mapping(), w_fast.detach().argmax(0).view(30, 4))
    for key, value in opt_plain.state[w_plain].items():
        torch.testing.assert_close(opt_fast.state[w_fast][key], value, rtol=1e-5, atol=1e-7)


def test_zero_grad_drops_a_deferred_gradient():
    model, ref = _model(1), _model(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2)
    x, y = _data(5)
    cross_entropy(model(x), y).backward()          # thrown away by zero_grad below
    opt.zero_grad()
    x, y = _data(6)
    cross_entropy(model(x), y).backward()
    opt.step()
    fused.enabled = False
    try:
        cross_entropy(ref(x), y).backward()
        opt_ref.step()
    finally:
        fused.enabled = True
    torch.testing.assert_close(model[0].mapping.weights, ref[0].mapping.weights, rtol=1e-5, atol=1e-6)


def test_materialize_grads_gives_the_real_gradient():
    model, ref = _model(2), _model(2)
    x, y = _data(7)
    cross_entropy(model(x), y).backward()
    fused.materialize_grads(model)
    fused.enabled = False
    try:
        cross_entropy(ref(x), y).backward()
    finally:
        fused.enabled = True
    torch.testing.assert_close(model[0].mapping.weights.grad, ref[0].mapping.weights.grad)


def test_optimizer_state_dict_round_trips():
    model = _model(3)
    opt = _train(model, lambda p: torch.optim.Adam(p, lr=1e-2), True, steps=2)
    clone = copy.deepcopy(model)
    opt2 = torch.optim.Adam(clone.parameters(), lr=1e-2)
    opt2.load_state_dict(opt.state_dict())
    w = clone[0].mapping.weights
    assert float(opt2.state[w]["step"]) == 2.0 and opt2.state[w]["exp_avg"].abs().sum() > 0


def test_argmax_cache_follows_adam_fused_steps_and_deepcopies():
    """``Adam(fused=True)`` updates in place without a version bump; the cache must still follow it."""
    fused.enabled = False
    try:
        model = copy.deepcopy(_model(4))
        opt = torch.optim.Adam(model.parameters(), lr=0.5, fused=True)
        for step in range(3):
            x, y = _data(step)
            opt.zero_grad()
            cross_entropy(model(x), y).backward()
            opt.step()
            w = model[0].mapping.weights.detach()
            assert torch.equal(model[0].hard_mapping(), w.argmax(0).view(30, 4))
    finally:
        fused.enabled = True


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_fused_argmax_ties_and_nan_follow_torch(threads):
    """Many exact ties (lr=0 keeps the weights) and a NaN column, over several row chunks and threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(6)
        layer = dwn.LUTLayer(200, 10, n=3, mapping="learnable")
        with torch.no_grad():
            layer.mapping.weights.copy_(torch.randint(0, 3, (200, 30)).float())
            layer.mapping.weights[150, 4] = float("nan")
            layer.mapping.weights[170, 4] = float("nan")
        opt = torch.optim.Adam(layer.parameters(), lr=0.0)
        x = (torch.rand(8, 200) > 0.5).float()
        layer(x).sum().backward()
        opt.step()
        w = layer.mapping.weights.detach()
        assert layer.mapping.has_cached_mapping            # set by the fused step
        assert torch.equal(layer.mapping.hard_mapping(), w.argmax(0))
        assert layer.mapping.hard_mapping()[4].item() == 150
    finally:
        torch.set_num_threads(old)


def test_many_backwards_without_a_step_materialize_the_gradient():
    model, ref = _model(8), _model(8)
    fused.enabled = False
    try:
        for k in range(fused.MAX_PENDING + 3):
            x, y = _data(k)
            cross_entropy(ref(x), y).backward()
    finally:
        fused.enabled = True
    for k in range(fused.MAX_PENDING + 3):
        x, y = _data(k)
        cross_entropy(model(x), y).backward()
    w = model[0].mapping.weights
    assert len(model[0].mapping.deferred) == 0 and w.grad.stride() != (0, 0)
    torch.testing.assert_close(w.grad, ref[0].mapping.weights.grad, rtol=1e-4, atol=1e-5)


def test_step_with_closure_matches_plain():
    """The closure's backward runs inside the step: it must give a real gradient, not a kept one."""
    results = []
    for use in (False, True):
        model = _model(9)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        x, y = _data(11)

        def closure():
            opt.zero_grad()
            loss = cross_entropy(model(x), y)
            loss.backward()
            return loss

        fused.enabled = use
        try:
            for _ in range(2):
                opt.step(closure)
        finally:
            fused.enabled = True
        results.append(model[0].mapping.weights.detach().clone())
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)
