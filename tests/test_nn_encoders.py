"""Thermometer fitting (uniform, distributive, gaussian), numpy/torch input and saved thresholds."""
import numpy as np
import pytest
import torch

import dwn_hw.nn as dnn


@pytest.fixture
def data():
    return (np.random.default_rng(0).normal(size=(101, 4)) * [1, 2, 3, 4]).astype(np.float32)


def test_uniform_thresholds(data):
    enc = dnn.Thermometer(4).fit(data)
    lo, hi = data.min(0), data.max(0)
    expected = lo[:, None] + np.arange(1, 5)[None, :] * ((hi - lo) / 5)[:, None]
    np.testing.assert_allclose(enc.thresholds.numpy(), expected, rtol=1e-6)


def test_distributive_thresholds_are_data_quantiles(data):
    enc = dnn.DistributiveThermometer(3).fit(data)
    s = np.sort(data, axis=0)
    idx = [int(101 * t / 4) for t in (1, 2, 3)]
    np.testing.assert_array_equal(enc.thresholds.numpy(), s[idx].T)
    # each threshold splits the training data at its quantile
    frac = enc.binarize(data).view(101, 4, 3).mean(0)
    assert torch.all((frac[:, 0] > 0.7) & (frac[:, 2] < 0.3))


def test_gaussian_thresholds(data):
    enc = dnn.GaussianThermometer(3).fit(torch.from_numpy(data))
    skew = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.25, 0.5, 0.75]))
    x = torch.from_numpy(data)
    expected = x.mean(0)[:, None] + x.std(0)[:, None] * skew[None, :]
    torch.testing.assert_close(enc.thresholds, expected)


@pytest.mark.parametrize("cls", [dnn.Thermometer, dnn.DistributiveThermometer, dnn.GaussianThermometer])
def test_global_fit_broadcasts_and_state_round_trips(cls, data):
    enc = cls(5, feature_wise=False).fit(data)
    assert tuple(enc.thresholds.shape) == (1, 5)
    bits = enc.binarize(data)
    assert tuple(bits.shape) == (101, 20)
    state = enc.get_state()
    assert set(state) == {"kind", "num_bits", "feature_wise", "thresholds"}
    back = dnn.Thermometer.from_state(state)
    assert type(back) is cls and back.feature_wise is False
    assert torch.equal(back.binarize(data), bits)


def test_numpy_and_torch_inputs_agree(data):
    enc = dnn.DistributiveThermometer(2).fit(data)
    assert torch.equal(enc.binarize(data), enc.binarize(torch.from_numpy(data)))
    assert enc.binarize(data.astype(np.float64)).dtype == torch.float32


def test_unfitted_and_bad_arguments_raise():
    with pytest.raises(ValueError, match="fit"):
        dnn.Thermometer(2).binarize(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="-1"):
        dnn.Thermometer(-1)
    with pytest.raises(TypeError, match="'yes'"):
        dnn.Thermometer(2, feature_wise="yes")
    enc = dnn.Thermometer(2).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="3"):
        enc.binarize(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="bogus"):
        dnn.Thermometer.from_state({"kind": "bogus", "num_bits": 1, "feature_wise": True})
