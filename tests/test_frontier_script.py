"""scripts/frontier.py: the plot's line joins only the models no other committed model dominates."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


def test_non_dominated():
    nd = load_script("scripts/frontier.py").non_dominated
    # (LUTs, accuracy): the second is beaten by the third (fewer LUTs, higher accuracy), the fourth by nothing.
    assert nd([(700, 94.9), (2200, 97.5), (2100, 98.1), (3800, 98.3)]) == [0, 2, 3]
    assert nd([(100, 90.0), (100, 90.0)]) == [0, 1]  # the same point twice: neither beats the other
    assert nd([(100, 90.0), (100, 91.0)]) == [1]  # as many LUTs, more accurate
    assert nd([(100, 90.0), (90, 90.0)]) == [1]  # as accurate, fewer LUTs
    assert nd([]) == []


def test_plot_of_committed_results(tmp_path):
    fr = load_script("scripts/frontier.py")
    results = json.loads((ROOT / "bench" / "results" / "frontier.json").read_text())
    out = tmp_path / "frontier.png"
    fr.plot(results, json.loads(fr.PUBLISHED.read_text()), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
