"""Freeze: IR scores equal the PyTorch forward (scores, not just classes) on digits and random models."""
import numpy as np
import pytest
import torch

import dwn_hw as dwn
import dwn_hw.ir as I
from dwn_hw.errors import DwnHwError
from dwn_hw.freeze import edge_inputs, freeze
from dwn_hw.datasets.grid import Grid


def pytorch_scores(model, encoder, grid, q):
    """The PyTorch forward on x = float32(q) / float32(scale), as integer scores (checked to be integers)."""
    model.eval()
    with torch.no_grad():
        if encoder is None:
            bits = torch.as_tensor(q, dtype=torch.float32)
        else:
            x = torch.from_numpy(q.astype(np.float32)) / torch.from_numpy(np.asarray(grid.scale, dtype=np.float32))
            bits = encoder.binarize(x)
        out = model(bits).double() * model[-1].tau
    r = torch.round(out)
    assert (out - r).abs().max().item() < 1e-3
    return r.long().numpy()


def random_model(seed, F=6, T=3, ns=(6, 2, 4), sizes=(40, 30, 12), k=4, learnable=(True, False, True),
                 perm=True, feature_wise=True):
    torch.manual_seed(seed)
    enc = dwn.DistributiveThermometer(T, feature_wise=feature_wise).fit(torch.randn(200, F) * 3)
    mods, prev = [], F * T
    for size, n, learn in zip(sizes, ns, learnable):
        mods.append(dwn.LUTLayer(prev, size, n, mapping="learnable" if learn else "random"))
        prev = size
    mods.append(dwn.GroupSum(k, tau=1 / 0.3, randperm=prev if perm else False))
    model = torch.nn.Sequential(*mods)
    with torch.no_grad():
        for layer in mods[:-1]:
            if layer.learnable:
                layer.mapping.weights.normal_()
    return model, enc


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("simplify", [True, False])
def test_random_models_mixed_n_learnable_permuted(seed, simplify):
    rng = np.random.default_rng(seed)
    ns = tuple(int(v) for v in rng.integers(1, 7, size=3))
    model, enc = random_model(seed, ns=ns, feature_wise=seed != 3)
    grid = Grid(np.float32([1 / 3, 0.1, 7.0, 255.0, 1.0, 2.5]) if seed % 2 else 3.7, 7, True)
    ir = freeze(model, encoder=enc, grid=grid, simplify=simplify)
    assert ir["groupsum"]["permutation"] == model[-1].randperm.tolist()
    assert ir["meta"]["checked"]["against"] == "pytorch"
    q = np.vstack([edge_inputs(ir, count=400, seed=seed + 9),
                   rng.integers(-64, 64, size=(300, 6))])
    want = pytorch_scores(model, enc, grid, q)
    got, classes = I.evaluate(ir, q)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(classes, want.argmax(1))
    assert len(set(map(tuple, want.tolist()))) > 3, "the test inputs should not all give one score vector"


def test_model_without_encoder_reads_bits():
    model, _ = random_model(5, ns=(3, 5), sizes=(20, 9), learnable=(True, False), k=3)
    ir = freeze(model)
    assert ir["encoder"]["kind"] == "none" and ir["encoder"]["features"] == 18
    bits = np.random.default_rng(0).integers(0, 2, size=(500, 18))
    np.testing.assert_array_equal(I.evaluate(ir, bits)[0], pytorch_scores(model, None, None, bits))


@pytest.fixture(scope="module")
def digits_model():
    """A small model trained briefly on digits (tables shaped by training, not random)."""
    from dwn_hw.datasets import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    x_train = torch.from_numpy(ds.grid.to_x(ds.q_train))
    enc = dwn.DistributiveThermometer(3).fit(x_train)
    model = torch.nn.Sequential(dwn.LUTLayer(64 * 3, 300, 6), dwn.LUTLayer(300, 100, 4),
                                dwn.GroupSum(10, tau=1 / 0.3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    bits = enc.binarize(x_train)
    y = torch.from_numpy(ds.y_train)
    for _ in range(3):
        for i in range(0, len(bits), 128):
            loss = torch.nn.functional.cross_entropy(model(bits[i:i + 128]), y[i:i + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model, enc, ds


def test_digits_every_test_sample(digits_model):
    model, enc, ds = digits_model
    ir = freeze(model, encoder=enc, grid=ds.grid, test_set=(ds.q_test, ds.y_test))
    want = pytorch_scores(model, enc, ds.grid, ds.q_test)
    got, classes = I.evaluate(ir, ds.q_test)
    np.testing.assert_array_equal(got, want)
    acc = ir["meta"]["accuracy"]
    assert acc["samples"] == len(ds.y_test) > 300
    assert acc["grid"] == pytest.approx(float((classes == ds.y_test).mean()))
    assert acc["float"] == acc["grid"]
    assert acc["grid"] > 0.25, "training should have learnt something; chance level is 0.1"
    assert ir["encoder"]["scale"] == 1.0 and ir["encoder"]["input_bits"] == 5


def test_inner_layer_without_ste_is_exact_but_last_is_refused():
    model, enc = random_model(1, ns=(4, 3, 2))
    model[1].ste = False
    grid = Grid(1.0, 6, True)
    ir = freeze(model, encoder=enc, grid=grid)
    q = edge_inputs(ir, count=500, seed=3)
    np.testing.assert_array_equal(I.evaluate(ir, q)[0], pytorch_scores(model, enc, grid, q))
    model[2].ste = False
    with pytest.raises(DwnHwError, match="ste=False"):
        freeze(model, encoder=enc, grid=grid)


@pytest.mark.parametrize("change,needle", [
    (lambda m: torch.nn.Sequential(m[0], torch.nn.ReLU(), *list(m)[1:]), "ReLU"),
    (lambda m: torch.nn.Sequential(*list(m)[:-1]), "GroupSum"),
    (lambda m: torch.nn.Sequential(dwn.LUTLayer(18, 40, 7), *list(m)[1:]), "n = 7"),
    (lambda m: torch.nn.Sequential(m[0], dwn.LUTLayer(41, 30, 2), *list(m)[2:]), "reads 41"),
])
def test_refusals_name_the_reason(change, needle):
    model, enc = random_model(0)
    with pytest.raises(DwnHwError, match=needle):
        freeze(change(model), encoder=enc, grid=Grid(1.0, 6, True))


def test_encoder_without_grid_is_refused():
    model, enc = random_model(0)
    with pytest.raises(DwnHwError, match="grid"):
        freeze(model, encoder=enc)
    with pytest.raises(DwnHwError, match="cannot freeze"):
        freeze(42)


def test_the_freeze_package_reexports_the_function():
    import dwn_hw.freeze
    import dwn_hw.freeze.model

    assert dwn_hw.freeze.freeze is dwn_hw.freeze.model.freeze
    model, _ = random_model(2, ns=(2, 3), sizes=(10, 6), learnable=(False, False), k=2)
    ir = dwn_hw.freeze.freeze(model, simplify=False)
    assert ir["encoder"]["kind"] == "none" and len(ir["layers"]) == 2


@pytest.mark.slow
def test_mnist_shaped_model_freezes_exactly():
    """torch-dwn's MNIST shape (784 x 3 bits, 2000 + 1000 LUT6, learnable first mapping, permuted GroupSum)."""
    torch.manual_seed(0)
    enc = dwn.DistributiveThermometer(3).fit(torch.randint(0, 256, (3000, 784)).float())
    model = torch.nn.Sequential(dwn.LUTLayer(784 * 3, 2000, 6, mapping="learnable"), dwn.LUTLayer(2000, 1000, 6),
                                dwn.GroupSum(10, tau=1 / 0.3, randperm=1000))
    with torch.no_grad():
        model[0].mapping.weights.normal_()
    grid = Grid(1.0, 8, False)
    ir = freeze(model, encoder=enc, grid=grid)
    q = np.random.default_rng(0).integers(0, 256, size=(2000, 784))
    np.testing.assert_array_equal(I.evaluate(ir, q)[0], pytorch_scores(model, enc, grid, q))
