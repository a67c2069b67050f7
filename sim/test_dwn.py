"""The cocotb bench: stream every vector through the design, one per clock, and compare.

It reads a *plan* (JSON, path in ``$DWN_SIM_PLAN``, written by ``run_sim.py``) that lists one
or more *units*: a set of top-level ports sharing ``clk`` and ``rst`` (``in_valid``,
``in_data``, ``out_valid``, ``out_class``, ``out_scores``, each name prefixed by the unit's
``ports``) and the vectors file with its expected scores and classes. A bundle has one unit
with no prefix; the test campaign drives many models at once through one harness.

Timing (docs/design.md, Hardware): the vector presented before rising edge ``e`` is sampled at that
edge; with latency ``L`` (register stages) its outputs are visible after edge ``e + L − 1``.
Inputs are driven and outputs sampled at falling edges, where nothing changes, so the bench
does not depend on how a simulator orders events at the rising edge. ``out_valid`` must be 1
exactly in the cycles where a result is due; results are compared after the run.

Needs only numpy and cocotb (no dwn-hw).
"""
from __future__ import annotations

import json
import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge
from cocotb.types import LogicArray


def pack_words(inputs: np.ndarray, inputs_kind: str, input_bits: int) -> list[int]:
    """One integer per vector: what ``in_data`` carries (feature f at ``[f·B +: B]``, or bit i at ``[i]``)."""
    inputs = np.asarray(inputs)
    if inputs_kind == "features":
        B = int(input_bits)
        u = inputs.astype(np.int64) & ((1 << B) - 1)           # two's complement for signed grids
        bits = ((u[:, :, None] >> np.arange(B, dtype=np.int64)) & 1).astype(np.uint8)
        bits = bits.reshape(inputs.shape[0], -1)
    else:
        bits = inputs.astype(np.uint8)
    packed = np.packbits(bits, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def _read(handle):
    """Integer value of a port, or None when it holds X/Z (4-state simulators)."""
    value = handle.value
    try:
        return value.to_unsigned() if isinstance(value, LogicArray) else int(value)
    except ValueError:
        return None


class Unit:
    """One design under test: its ports, its vectors and what came out."""

    def __init__(self, dut, spec: dict):
        self.spec = spec
        p = spec.get("ports", "")
        self.in_valid = getattr(dut, p + "in_valid")
        self.in_data = getattr(dut, p + "in_data")
        self.out_valid = getattr(dut, p + "out_valid")
        self.out_class = getattr(dut, p + "out_class")
        self.out_scores = getattr(dut, p + "out_scores")
        with np.load(spec["vectors"]) as z:
            self.inputs = z["inputs"]
            self.exp_scores = z["scores"].astype(np.int64)
            self.exp_classes = z["classes"].astype(np.int64)
        self.n = int(self.inputs.shape[0])
        self.latency = int(spec["latency"])
        self.words = pack_words(self.inputs, spec["inputs"], spec.get("input_bits", 1))
        self.got_scores: list = [None] * self.n
        self.got_classes: list = [None] * self.n
        self.valid_errors: list = []     # (cycle, out_valid seen, out_valid due)

    def drive(self, i: int) -> None:
        """Present vector ``i`` (or nothing once the vectors are used up)."""
        if i < self.n:
            self.in_data.value = self.words[i]
            self.in_valid.value = 1
        elif i == self.n:
            self.in_valid.value = 0

    def sample(self, edge: int) -> None:
        """After rising edge ``edge``: the result of vector ``edge − L + 1`` is due."""
        i = edge - self.latency + 1
        due = 0 <= i < self.n
        seen = _read(self.out_valid)
        if seen != int(due):
            if len(self.valid_errors) < 20:
                self.valid_errors.append((edge, seen, int(due)))
        if due and seen == 1:
            self.got_scores[i] = _read(self.out_scores)
            self.got_classes[i] = _read(self.out_class)

    def report(self, max_report: int) -> dict:
        """Compare; return counts and the first mismatches as plain JSON."""
        K, W = self.exp_scores.shape[1], int(self.spec["score_width"])
        mask = (1 << W) - 1
        bad = []
        for i in range(self.n):
            s, c = self.got_scores[i], self.got_classes[i]
            got = None if s is None else [(s >> (k * W)) & mask for k in range(K)]
            if got is None or c is None or got != self.exp_scores[i].tolist() or c != self.exp_classes[i]:
                bad.append(i)
        rows = []
        for i in bad[:max_report]:
            s, c = self.got_scores[i], self.got_classes[i]
            rows.append({
                "index": i,
                "inputs": self.inputs[i].tolist(),
                "expected": {"scores": self.exp_scores[i].tolist(), "class": int(self.exp_classes[i])},
                "got": {"scores": None if s is None else [(s >> (k * W)) & mask for k in range(K)],
                        "class": c},
            })
        return {"name": self.spec.get("name", self.spec.get("ports", "") or "dut"), "n": self.n,
                "matched": self.n - len(bad), "expected_from": self.spec.get("expected_from", "?"),
                "mismatches": rows, "valid_errors": self.valid_errors}


@cocotb.test()
async def bit_exact(dut):
    """Every vector of every unit: scores and class equal the expected ones, at the right cycle."""
    with open(os.environ["DWN_SIM_PLAN"]) as f:
        plan = json.load(f)
    units = [Unit(dut, spec) for spec in plan["units"]]
    cocotb.start_soon(Clock(dut.clk, 2, unit="step").start(start_high=False))
    fall = FallingEdge(dut.clk)

    dut.rst.value = 1
    for u in units:
        u.in_valid.value = 0
        u.in_data.value = 0
    for _ in range(2):
        await fall
    dut.rst.value = 0
    for u in units:
        u.drive(0)
    edges = max(u.n + u.latency for u in units) + 1
    for edge in range(edges):
        await fall                      # rising edge `edge` has happened
        for u in units:
            u.sample(edge)
            u.drive(edge + 1)

    reports = [u.report(int(plan.get("max_report", 10))) for u in units]
    with open(plan["result"], "w") as f:
        json.dump({"units": reports}, f)
    failed = [r["name"] for r in reports if r["matched"] != r["n"] or r["valid_errors"]]
    assert not failed, f"not bit-exact: {', '.join(failed)}"
