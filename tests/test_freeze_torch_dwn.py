"""torch-dwn import: state dicts in its key layout, checked against an independent numpy forward."""
import numpy as np
import pytest
import torch

import dwn_hw
import dwn_hw.ir as I
from dwn_hw.errors import DwnHwError
from dwn_hw.freeze import edge_inputs, freeze, from_torch_dwn, save_checkpoint


def torch_dwn_state(seed, F=5, T=3, sizes=(24, 12), ns=(4, 3), learnable_first=True, prefix="", gap=False):
    """A state dict laid out as torch-dwn saves nn.Sequential(LUTLayer..., GroupSum)."""
    g = torch.Generator().manual_seed(seed)
    sd, prev, idx = {}, F * T, 0
    for i, (N, n) in enumerate(zip(sizes, ns)):
        key = f"{prefix}{idx}"
        if i == 0 and learnable_first:
            sd[f"{key}.mapping.weights"] = torch.rand(prev, N * n, generator=g)
            sd[f"{key}._LUTLayer__dummy_mapping"] = torch.arange(N * n).reshape(N, n).int()
        else:
            sd[f"{key}.mapping"] = torch.randint(0, prev, (N, n), generator=g, dtype=torch.int32)
        sd[f"{key}.luts"] = torch.rand(N, 2 ** n, generator=g) * 2 - 1
        prev = N
        idx += 2 if gap else 1          # a Flatten between layers leaves a gap in the indices
    theta = np.sort(np.random.default_rng(seed).uniform(-2, 10, size=(F, T)), axis=1).astype(np.float32)
    return sd, theta


def reference_scores(sd, theta, k, perm, q, scale, prefix=""):
    """torch-dwn's semantics from the raw state dict, in numpy, sharing no code with dwn_hw."""
    x = q.astype(np.float32) / np.float32(scale)
    h = (x[:, :, None] > theta[None]).reshape(len(q), -1).astype(np.int64)
    mods = sorted({k_.rsplit(".luts", 1)[0] for k_ in sd if k_.endswith(".luts")},
                  key=lambda m: int(m.rsplit(".", 1)[-1]) if "." in m else int(m))
    for m in mods:
        luts = sd[f"{m}.luts"].numpy()
        N, n = luts.shape[0], int(np.log2(luts.shape[1]))
        if f"{m}.mapping.weights" in sd:
            mp = sd[f"{m}.mapping.weights"].numpy().argmax(0).reshape(N, n)
        else:
            mp = sd[f"{m}.mapping"].numpy().astype(np.int64)
        addr = sum(h[:, mp[:, l]] << l for l in range(n))
        h = (luts[np.arange(N)[None, :], addr] > 0).astype(np.int64)
    if perm is not None:
        h = h[:, perm]
    pad = (-h.shape[1]) % k
    h = np.concatenate([h, np.zeros((len(h), pad), np.int64)], axis=1)
    return h.reshape(len(h), k, -1).sum(2)


@pytest.mark.parametrize("kw", [
    {},
    {"prefix": "body.", "gap": True},
    {"learnable_first": False, "sizes": (30, 20, 9), "ns": (6, 2, 5)},
])
def test_import_matches_torch_dwn_semantics(kw):
    sd, theta = torch_dwn_state(1, **kw)
    k = 3
    perm = np.random.default_rng(2).permutation(kw.get("sizes", (24, 12))[-1])
    ck = from_torch_dwn(sd, theta, k, tau=0.5, randperm=perm, input_scale=2.0, input_bits=6)
    ir = freeze(ck)
    q = np.vstack([edge_inputs(ir, count=300), np.random.default_rng(3).integers(-32, 32, size=(300, 5))])
    want = reference_scores(sd, theta, k, perm, q, 2.0, prefix=kw.get("prefix", ""))
    np.testing.assert_array_equal(I.evaluate(ir, q)[0], want)
    assert ir["encoder"]["signed"] is True                      # a negative threshold needs negative inputs
    assert ir["groupsum"]["permutation"] == perm.tolist() and ir["groupsum"]["tau"] == 0.5


def test_import_files_save_and_reload(tmp_path):
    sd, theta = torch_dwn_state(4)
    torch.save(sd, tmp_path / "state.pt")
    np.save(tmp_path / "th.npy", theta)
    ck = from_torch_dwn(str(tmp_path / "state.pt"), str(tmp_path / "th.npy"), 4, input_bits=5)
    save_checkpoint(ck, tmp_path / "model.pt")
    with pytest.raises(DwnHwError, match="--force"):
        save_checkpoint(ck, tmp_path / "model.pt")
    loaded = dwn_hw.load(tmp_path / "model.pt")
    ir_a, ir_b = freeze(ck), freeze(tmp_path / "model.pt")
    assert ir_a["layers"] == ir_b["layers"] and ir_a["encoder"] == ir_b["encoder"]
    q = edge_inputs(ir_a)
    np.testing.assert_array_equal(I.evaluate(ir_b, q)[0], reference_scores(sd, theta, 4, None, q, 1.0))
    assert loaded.meta["source"] == "torch-dwn state dict"


def test_pickled_whole_model_is_refused_with_a_hint(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    torch.save(model, tmp_path / "whole.pt")
    with pytest.raises(DwnHwError, match=r"state_dict\(\)"):
        from_torch_dwn(str(tmp_path / "whole.pt"), np.zeros((1, 2)), 2, input_bits=4)
    with pytest.raises(DwnHwError, match="state dict"):
        from_torch_dwn(model, np.zeros((1, 2)), 2, input_bits=4)


@pytest.mark.parametrize("edit,needle", [
    (lambda sd: sd.update({"2.weight": torch.zeros(3, 3)}), "'2.weight'"),
    (lambda sd: sd.update({"1.luts": torch.zeros(12, 5)}), "2\\*\\*n"),
    (lambda sd: sd.pop("1.mapping"), "neither"),
    (lambda sd: sd.update({"1.mapping": torch.full((12, 3), 99, dtype=torch.int32)}), "input 99"),
])
def test_bad_state_dicts_are_refused(edit, needle):
    sd, theta = torch_dwn_state(0)
    edit(sd)
    with pytest.raises(DwnHwError, match=needle):
        from_torch_dwn(sd, theta, 3, input_bits=6)


def test_missing_grid_and_bad_arguments_are_refused():
    sd, theta = torch_dwn_state(0)
    with pytest.raises(DwnHwError, match="--input-bits 5 \\(signed\\)"):
        from_torch_dwn(sd, theta, 3)
    with pytest.raises(DwnHwError, match="num_classes"):
        from_torch_dwn(sd, theta, 0, input_bits=6)
    with pytest.raises(DwnHwError, match="randperm"):
        from_torch_dwn(sd, theta, 3, randperm=[0, 0, 1], input_bits=6)
    with pytest.raises(DwnHwError, match="thresholds have 4 rows"):
        from_torch_dwn(sd, theta[:4], 3, input_bits=6)


def test_bundle_inputs_without_a_data_set_uses_edges(tmp_path):
    from dwn_hw.freeze import bundle_inputs

    sd, theta = torch_dwn_state(6, F=4, T=2)
    ck = from_torch_dwn(sd, theta, 3, tau=1.0, input_scale=3.0, input_bits=5)
    save_checkpoint(ck, tmp_path / "imp.pt")
    b = bundle_inputs(tmp_path / "imp.pt")
    q = b["inputs"]
    assert b["expected_from"] == "pytorch" and q.dtype == np.int64 and q.shape[1] == 4
    rows = {tuple(r) for r in q.tolist()}
    qmin, qmax = I.grid_range(b["ir"]["encoder"])
    assert (qmin, qmax) == ((-16, 15) if (theta < 0).any() else (0, 31))
    assert (0, 0, 0, 0) in rows and (qmin,) * 4 in rows and (qmax,) * 4 in rows
    th = np.asarray(b["ir"]["encoder"]["thresholds"])
    for t in range(2):
        for d in (-1, 0, 1):
            assert tuple(np.clip(th[:, t] + d, qmin, qmax).tolist()) in rows
    np.testing.assert_array_equal(b["scores"], reference_scores(sd, theta, 3, None, q, 3.0))
    np.testing.assert_array_equal(b["classes"], b["scores"].argmax(1))
