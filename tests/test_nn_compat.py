"""torch-dwn compatibility: its README quick-start, its state dicts, and argument checking."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.functional import cross_entropy

import dwn_hw as dwn


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x.astype(np.float32), y, test_size=0.25, random_state=0)
    return x_train, torch.from_numpy(y_train), x_test, torch.from_numpy(y_test)


@pytest.fixture
def one_thread():
    # the suite runs two workers on two cores: one thread each avoids OpenMP threads waiting on each other
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_readme_quick_start_on_digits(one_thread):
    """torch-dwn's README model and loop (examples/mnist.py), import changed, on scikit-learn's digits."""
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = _digits()
    thermometer = dwn.DistributiveThermometer(3).fit(x_train)
    x_train = thermometer.binarize(x_train).flatten(start_dim=1)
    x_test = thermometer.binarize(x_test).flatten(start_dim=1)
    model = nn.Sequential(
        dwn.LUTLayer(x_train.size(1), 2000, n=6, mapping='learnable'),
        dwn.LUTLayer(2000, 1000, n=6),
        dwn.GroupSum(10, tau=1 / 0.3),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, gamma=0.1, step_size=14)
    model.train()
    for epoch in range(3):
        permutation = torch.randperm(x_train.shape[0])
        for i in range(0, x_train.shape[0], 32):
            optimizer.zero_grad()
            idx = permutation[i:i + 32]
            loss = cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            optimizer.step()
        scheduler.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    assert acc >= 0.90, acc


def _torch_dwn_state_dict(learnable_first=True):
    """A state dict shaped the way torch-dwn saves ``Sequential(LUTLayer(learnable), LUTLayer, GroupSum)``."""
    g = torch.Generator().manual_seed(11)
    return {
        "0.mapping.weights": torch.rand(12, 8 * 3, generator=g),
        "0._LUTLayer__dummy_mapping": torch.arange(8 * 3).reshape(8, 3).int(),
        "0.luts": torch.rand(8, 8, generator=g) * 2 - 1,
        "1.mapping": torch.randperm(8, generator=g)[:6].reshape(3, 2).int(),
        "1.luts": torch.rand(3, 4, generator=g) * 2 - 1,
    }


def test_torch_dwn_state_dict_loads():
    sd = _torch_dwn_state_dict()
    model = nn.Sequential(dwn.LUTLayer(12, 8, n=3, mapping="learnable"), dwn.LUTLayer(8, 3, n=2),
                          dwn.GroupSum(3))
    result = model.load_state_dict(sd, strict=True)        # dummy key accepted, GroupSum randperm optional
    assert not result.unexpected_keys
    assert torch.equal(model[0].mapping.weights, sd["0.mapping.weights"])
    assert torch.equal(model[1].mapping, sd["1.mapping"]) and model[1].mapping.dtype == torch.int32
    assert torch.equal(model[0].hard_mapping(), sd["0.mapping.weights"].argmax(0).view(8, 3))
    # torch-dwn's GroupSum saves no permutation; ours saves it as an empty buffer when off
    assert model[2].randperm.numel() == 0


def test_torch_dwn_state_dict_other_unexpected_keys_still_fail():
    sd = _torch_dwn_state_dict()
    sd["0.bogus"] = torch.zeros(1)
    model = nn.Sequential(dwn.LUTLayer(12, 8, n=3, mapping="learnable"), dwn.LUTLayer(8, 3, n=2))
    with pytest.raises(RuntimeError, match="0.bogus"):
        model.load_state_dict(sd)


def test_adam_fused_accepts_model_parameters():
    """The fixed mapping is a buffer (int32), so ``Adam(fused=True)`` takes ``model.parameters()``."""
    model = nn.Sequential(dwn.LUTLayer(12, 8, n=3, mapping="learnable"), dwn.LUTLayer(8, 3, n=2))
    torch.optim.Adam(model.parameters(), fused=True)
    assert {n for n, _ in model.named_parameters()} == {"0.mapping.weights", "0.luts", "1.luts"}


@pytest.mark.parametrize("kwargs, exc, word", [
    (dict(input_size=0, output_size=2, n=2), ValueError, "0"),
    (dict(input_size=4, output_size=-3, n=2), ValueError, "-3"),
    (dict(input_size=4, output_size=2, n=0), ValueError, "n"),
    (dict(input_size=4.5, output_size=2, n=2), TypeError, "4.5"),
    (dict(input_size=4, output_size=2, n=2, mapping="bogus"), ValueError, "bogus"),
    (dict(input_size=4, output_size=2, n=2, mapping=torch.zeros(2, 2, dtype=torch.int64)), TypeError, "int64"),
    (dict(input_size=4, output_size=2, n=2, mapping=torch.zeros(3, 2, dtype=torch.int32)), ValueError, "(3, 2)"),
    (dict(input_size=4, output_size=2, n=2, mapping=torch.full((2, 2), 4, dtype=torch.int32)), ValueError, "4"),
    (dict(input_size=4, output_size=2, n=2, ste="yes"), TypeError, "yes"),
    (dict(input_size=4, output_size=2, n=2, alpha="big"), TypeError, "big"),
    (dict(input_size=4, output_size=2, n=2, mapping="learnable", lm_tau=0), ValueError, "tau"),
])
def test_bad_lut_layer_arguments_name_the_value(kwargs, exc, word):
    with pytest.raises(exc) as info:
        dwn.LUTLayer(**kwargs)
    assert word in str(info.value)


@pytest.mark.parametrize("args, exc, word", [
    ((0,), ValueError, "0"), (("3",), TypeError, "'3'"), ((3, -1.0), ValueError, "-1.0"),
    ((3, 1, "x"), ValueError, "'x'"),
])
def test_bad_group_sum_arguments_name_the_value(args, exc, word):
    with pytest.raises(exc) as info:
        dwn.GroupSum(*args)
    assert word in str(info.value)


def test_wrong_input_width_is_named():
    layer = dwn.LUTLayer(4, 2, n=2)
    with pytest.raises(ValueError, match=r"\(3, 5\)"):
        layer(torch.zeros(3, 5))


def test_out_of_range_mapping_from_a_state_dict_is_refused():
    layer = dwn.LUTLayer(4, 2, n=2)
    layer.load_state_dict({"luts": layer.luts.detach().clone(), "mapping": torch.tensor([[0, 1], [2, 9]]).int()})
    with pytest.raises(IndexError, match="9"):
        layer(torch.zeros(3, 4))
