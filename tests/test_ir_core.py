"""IR v1: validation errors name the field, round trips, and the evaluator against a plain loop."""
import json

import numpy as np
import pytest

import dwn_hw.ir as I


def brute_force(ir, q):
    """The semantics of docs/ir.md, one sample at a time, in plain Python."""
    enc = ir["encoder"]
    out_s, out_c = [], []
    for row in np.asarray(q).tolist():
        if enc["kind"] == "thermometer":
            bits = [int(row[f] > t) for f in range(enc["features"]) for t in enc["thresholds"][f]]
        else:
            bits = list(row)
        for layer in ir["layers"]:
            nxt = []
            for m, t in zip(layer["mapping"], layer["tables"]):
                a = sum(bits[src] << l for l, src in enumerate(m))
                nxt.append((int(t, 16) >> a) & 1)
            bits = nxt
        perm = ir["groupsum"]["permutation"]
        if perm is not None:
            bits = [bits[p] for p in perm]
        k = ir["groupsum"]["k"]
        g = -(-len(bits) // k)
        bits = bits + [0] * (g * k - len(bits))
        scores = [sum(bits[c * g:(c + 1) * g]) for c in range(k)]
        out_s.append(scores)
        out_c.append(scores.index(max(scores)))
    return np.array(out_s), np.array(out_c)


@pytest.mark.parametrize("seed,kw", [
    (0, {}),
    (1, {"permute": True, "mixed_n": True, "k": 3}),
    (2, {"signed": True, "input_bits": 5, "layers": [(40, 5), (30, 3), (7, 2)], "k": 7}),
    (3, {"encoder": False, "layers": [(16, 6)], "k": 5, "permute": True}),
    (4, {"layers": [(10, 1)], "k": 2, "bits_per_feature": 1, "features": 3}),
])
def test_evaluator_matches_plain_loop(seed, kw):
    ir = I.random_ir(seed, **kw)
    rng = np.random.default_rng(seed)
    if ir["encoder"]["kind"] == "thermometer":
        qmin, qmax = I.grid_range(ir["encoder"])
        q = rng.integers(qmin, qmax + 1, size=(300, ir["encoder"]["features"]))
    else:
        q = rng.integers(0, 2, size=(300, ir["encoder"]["features"]))
    s, c = I.evaluate(ir, q, chunk=64)
    bs, bc = brute_force(ir, q)
    np.testing.assert_array_equal(s, bs)
    np.testing.assert_array_equal(c, bc)


def test_table_hex_round_trip_and_bit_order():
    assert I.table_hex([0, 1, 0, 0]) == "2"          # output 1 at address 1 only
    assert I.table_hex([1] + [0] * 63) == "0000000000000001"
    assert I.table_hex([1]) == "1"
    rng = np.random.default_rng(0)
    for m in range(7):
        bits = rng.integers(0, 2, size=1 << m)
        np.testing.assert_array_equal(I.decode_table(I.table_hex(bits), m), bits)


def test_ties_go_to_lowest_class_and_padding():
    ir = I.random_ir(0, features=1, bits_per_feature=1, input_bits=1, layers=[(5, 1)], k=2)
    ir["layers"][0]["mapping"] = [[0]] * 5
    ir["layers"][0]["tables"] = ["3"] * 5            # constant 1
    s, c = I.evaluate(ir, np.array([[0], [1]]))
    # 5 outputs, k=2 -> groups of 3, second group padded with one zero
    assert s.tolist() == [[3, 2], [3, 2]]
    ir["layers"][0]["tables"] = ["3", "0", "0", "3", "0"]
    s, c = I.evaluate(ir, np.array([[0]]))
    assert s.tolist() == [[1, 1]] and c.tolist() == [0]


def test_strict_greater_threshold():
    ir = I.random_ir(0, features=1, bits_per_feature=1, input_bits=4, layers=[(1, 1)], k=1)
    ir["encoder"]["thresholds"] = [[5]]
    assert I.encode(ir, np.array([[5], [6]])).ravel().tolist() == [0, 1]


@pytest.mark.parametrize("edit,needle", [
    (lambda ir: ir.update(format="other"), "$.format"),
    (lambda ir: ir.update(version=2), "newer"),
    (lambda ir: ir["layers"][0]["tables"].__setitem__(0, "zz"), "$.layers[0].tables[0]"),
    (lambda ir: ir["layers"][0]["tables"].__setitem__(0, "0"), "hex digits"),
    (lambda ir: ir["layers"][1]["mapping"][0].__setitem__(0, 999), "mapping[0][0] = 999"),
    (lambda ir: ir["encoder"]["thresholds"][0].__setitem__(0, 99), "thresholds[0][0] = 99"),
    (lambda ir: ir["groupsum"].update(permutation=[0, 0]), "permutation"),
    (lambda ir: ir["layers"][0].update(n=7), "$.layers[0].n"),
    (lambda ir: ir["encoder"].update(kind="gray"), "$.encoder.kind"),
])
def test_validation_names_field_and_value(edit, needle):
    ir = I.random_ir(0)
    edit(ir)
    with pytest.raises(I.IRError) as err:
        I.validate(ir)
    assert needle in str(err.value)


def test_save_load_atomic_and_no_overwrite(tmp_path):
    ir = I.random_ir(5, permute=True)
    path = tmp_path / "m.ir.json"
    I.save(ir, path)
    assert I.load(path) == json.loads(json.dumps(ir))
    with pytest.raises(I.IRError.__mro__[1], match="--force"):
        I.save(ir, path)
    I.save(ir, path, force=True)
    path.write_text(path.read_text()[:50])
    with pytest.raises(I.IRError, match="not valid JSON"):
        I.load(path)


def test_inputs_off_grid_are_refused():
    ir = I.random_ir(0, input_bits=4)
    with pytest.raises(I.IRError, match="grid"):
        I.evaluate(ir, np.full((1, 8), 16))
    with pytest.raises(I.IRError, match="integers"):
        I.evaluate(ir, np.zeros((1, 8)))


def test_ir_side_never_imports_torch():
    import subprocess
    import sys
    code = "import sys, dwn_hw.ir, dwn_hw.errors, dwn_hw.fsutil; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
