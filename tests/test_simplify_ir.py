"""Simplification keeps the function (exhaustively on small IRs, on data on large ones) and the interface."""
import copy
import itertools

import numpy as np
import pytest

import dwn_hw.ir as I


def _all_inputs(ir):
    enc = ir["encoder"]
    if enc["kind"] == "none":
        return np.array(list(itertools.product((0, 1), repeat=enc["features"])), dtype=np.int64)
    qmin, qmax = I.grid_range(enc)
    return np.array(list(itertools.product(range(qmin, qmax + 1), repeat=enc["features"])), dtype=np.int64)


def _same_interface(a, b):
    ea, eb = a["encoder"], b["encoder"]
    for key in ("kind", "features", "bits_per_feature", "scale", "input_bits", "signed"):
        assert ea[key] == eb[key], key
    assert ea.get("thresholds") == eb.get("thresholds")
    assert len(a["layers"]) == len(b["layers"])
    assert len(a["layers"][-1]["mapping"]) == len(b["layers"][-1]["mapping"])
    assert a["groupsum"] == b["groupsum"]


def _biased_ir(seed, **kw):
    """A random IR with the structure simplification feeds on: constant bits, repeated and ignored inputs."""
    ir = I.random_ir(seed, **kw)
    rng = np.random.default_rng(seed + 100)
    enc = ir["encoder"]
    if enc["kind"] == "thermometer":
        qmin, qmax = I.grid_range(enc)
        for row in enc["thresholds"]:
            for t in range(len(row)):
                if rng.random() < 0.15:
                    row[t] = int(rng.choice([qmin - 1, qmax]))
    for layer in ir["layers"]:
        for j, row in enumerate(layer["mapping"]):
            if len(row) >= 2 and rng.random() < 0.3:
                row[1] = row[0]                                    # same source read twice
            if rng.random() < 0.2:
                layer["tables"][j] = I.table_hex(np.full(1 << len(row), rng.integers(0, 2)))  # constant table
            elif len(row) >= 1 and rng.random() < 0.3:
                bits = I.decode_table(layer["tables"][j], len(row)).reshape(-1, 2)
                bits[:, 1] = bits[:, 0]                            # slot 0 ignored
                layer["tables"][j] = I.table_hex(bits.ravel())
    ir["encoder"]["used"] = I.used_bits(ir)
    return I.validate(ir)


CASES = [
    (0, {"features": 3, "bits_per_feature": 3, "input_bits": 3, "layers": [(12, 4), (9, 3), (6, 2)], "k": 3}),
    (1, {"features": 2, "bits_per_feature": 4, "input_bits": 4, "signed": True, "layers": [(10, 6), (5, 5)],
         "k": 2, "permute": True, "mixed_n": True}),
    (2, {"features": 4, "bits_per_feature": 2, "input_bits": 2, "layers": [(16, 3), (7, 4)], "k": 3,
         "permute": True}),
    (3, {"encoder": False, "features": 10, "bits_per_feature": 1, "layers": [(12, 5), (8, 3)], "k": 4}),
    (4, {"features": 2, "bits_per_feature": 2, "input_bits": 3, "layers": [(4, 1), (3, 2)], "k": 3}),
]


@pytest.mark.parametrize("seed,kw", CASES)
@pytest.mark.parametrize("biased", [False, True])
def test_simplify_keeps_function_exhaustively(seed, kw, biased):
    ir = _biased_ir(seed, **kw) if biased else I.random_ir(seed, **kw)
    before = copy.deepcopy(ir)
    out, report = I.simplify(ir)
    assert ir == before, "simplify must not modify its argument"
    q = _all_inputs(ir)
    s0, c0 = I.evaluate(ir, q)
    s1, c1 = I.evaluate(out, q)
    np.testing.assert_array_equal(s1, s0)
    np.testing.assert_array_equal(c1, c0)
    _same_interface(ir, out)
    # report counts agree with the IR it describes
    assert report["luts_after"] == [len(layer["mapping"]) for layer in out["layers"]]
    assert report["lut_inputs_after"] == sum(len(r) for layer in out["layers"] for r in layer["mapping"])
    assert report["lut_inputs_after"] <= report["lut_inputs_before"]
    assert report["encoder_bits_unused"] == sum(not u for row in out["encoder"]["used"] for u in row)
    assert "LUTs:" in report["text"]
    # used marks exactly the bits the first layer reads
    read = {s for r in out["layers"][0]["mapping"] for s in r}
    flat = [u for row in out["encoder"]["used"] for u in row]
    assert {i for i, u in enumerate(flat) if u} == read


def _simplified_is_clean(out):
    """Nothing left for the passes: no ignored or repeated inputs, no constant or unread inner LUTs."""
    last = len(out["layers"]) - 1
    for i, layer in enumerate(out["layers"]):
        for row, table in zip(layer["mapping"], I.layer_tables(layer)):
            assert len(set(row)) == len(row)
            for slot in range(len(row)):
                t3 = table.reshape(-1, 2, 1 << slot)
                assert not np.array_equal(t3[:, 0], t3[:, 1])
            if i < last:
                assert row, "a constant inner LUT should have been folded away"
        if i < last:
            read = {s for r in out["layers"][i + 1]["mapping"] for s in r}
            assert read == set(range(len(layer["mapping"])))


@pytest.mark.parametrize("seed,kw", CASES[:3])
def test_simplify_reaches_a_fixed_point(seed, kw):
    out, _ = I.simplify(_biased_ir(seed, **kw))
    _simplified_is_clean(out)
    again, report = I.simplify(out)
    assert again["layers"] == out["layers"]
    assert report["lut_inputs_before"] == report["lut_inputs_after"]


def test_simplify_hand_made_cases():
    ir = I.random_ir(0, features=2, bits_per_feature=2, input_bits=2, layers=[(3, 2), (2, 2)], k=2)
    enc = ir["encoder"]
    enc["thresholds"] = [[-1, 1], [0, 3]]            # bit 0 always 1, bit 3 always 0
    ir["layers"][0]["mapping"] = [[0, 1], [2, 2], [3, 1]]
    ir["layers"][0]["tables"] = [I.table_hex([0, 1, 0, 1]), I.table_hex([0, 0, 1, 1]), I.table_hex([1, 1, 0, 1])]
    ir["layers"][1]["mapping"] = [[0, 1], [2, 2]]
    ir["layers"][1]["tables"] = [I.table_hex([0, 1, 1, 0]), I.table_hex([1, 0, 0, 1])]
    ir["encoder"]["used"] = I.used_bits(ir)
    out, report = I.simplify(I.validate(ir))
    q = _all_inputs(ir)
    np.testing.assert_array_equal(I.evaluate(out, q)[0], I.evaluate(ir, q)[0])
    # LUT 0 = bit 0 (constant 1); LUT 1 = bit 2; LUT 2 reads bit 3 = 0 -> table[bit1 << 0] = 1 always
    # last LUT 0 = xor(const 1, bit 2) = not bit 2; last LUT 1 reads LUT 2 twice -> 1 always
    assert out["layers"][0]["mapping"] == [[2]]
    assert out["layers"][1]["mapping"] == [[0], []]
    assert out["layers"][1]["tables"] == [I.table_hex([1, 0]), "1"]
    assert out["encoder"]["used"] == [[False, False], [True, False]]
    assert report["features_unused"] == [0]
    assert report["constant_luts_last_layer"] == 1
    assert report["repeated_inputs"] >= 2 and report["constant_inputs"] >= 2


def test_simplify_large_ir_on_data():
    ir = _biased_ir(7, features=60, bits_per_feature=4, input_bits=6, layers=[(600, 6), (300, 6), (100, 6)],
                    k=10, permute=True)
    out, report = I.simplify(ir)
    rng = np.random.default_rng(1)
    qmin, qmax = I.grid_range(ir["encoder"])
    q = rng.integers(qmin, qmax + 1, size=(3000, 60))
    np.testing.assert_array_equal(I.evaluate(out, q)[0], I.evaluate(ir, q)[0])
    _same_interface(ir, out)
    assert sum(report["luts_after"]) < sum(report["luts_before"])
