"""The committed MNIST models: they load, validate, have the stated shape, and reach the accuracy that
models/README.md states when `dwn-hw eval` runs them on the MNIST test set (numpy evaluator).

The accuracy check needs MNIST (cached in ~/.cache/dwn-hw, or fetched with pip on first use); it is
skipped, with the reason, when the data cannot be had.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dwn_hw import ir as irmod

MODELS = Path(__file__).resolve().parent.parent / "models"
IR_FILES = sorted(MODELS.glob("*.ir.json"))


def stated() -> dict[str, dict]:
    """Rows of the README table: `file` | DWN LUTs | correct/10,000 | ..."""
    rows = {}
    for line in (MODELS / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`([\w.]+\.ir\.json)`\s*\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*/\s*([\d,]+)", line)
        if m:
            rows[m.group(1)] = {"luts": int(m.group(2).replace(",", "")),
                                "correct": int(m.group(3).replace(",", "")), "n": int(m.group(4).replace(",", ""))}
    return rows


def test_every_committed_model_is_listed():
    assert IR_FILES, "no models/*.ir.json committed"
    assert {p.name for p in IR_FILES} == set(stated()), "models/README.md must list every IR file, and only those"


@pytest.mark.parametrize("path", IR_FILES, ids=[p.name for p in IR_FILES])
def test_model_loads_and_has_the_stated_shape(path):
    ir = irmod.load(path)  # validates against the schema and the semantic checks
    row = stated()[path.name]
    enc = ir["encoder"]
    assert enc["kind"] == "thermometer" and enc["features"] == 784 and enc["input_bits"] == 8
    assert not enc["signed"]
    assert ir["groupsum"]["k"] == 10
    # simplification may drop LUTs nothing reads, never add any
    assert 0 < sum(len(layer["mapping"]) for layer in ir["layers"]) <= row["luts"]
    # tables and mappings only: no training weights in a committed model
    assert path.stat().st_size < 2_000_000


@pytest.mark.parametrize("path", IR_FILES, ids=[p.name for p in IR_FILES])
def test_eval_reproduces_the_stated_accuracy(path):
    from dwn_hw.errors import DwnHwError
    from dwn_hw.datasets.readers import load_mnist

    try:
        load_mnist()
    except (DwnHwError, OSError) as exc:
        pytest.skip(f"MNIST not available: {exc}")
    from dwn_hw.describe_cli import eval_cmd

    res = CliRunner().invoke(eval_cmd, [str(path), "--dataset", "mnist"])
    assert res.exit_code == 0, res.output
    m = re.search(r"accuracy [0-9.]+ \((\d+)/(\d+)\)", res.output)
    assert m, res.output
    row = stated()[path.name]
    assert (int(m.group(1)), int(m.group(2))) == (row["correct"], row["n"])
