"""Shared test fixtures."""
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script(relpath: str):
    """A repository script that is not a package module (``bench/qor.py``, ``scripts/frontier.py``), imported."""
    path = ROOT / relpath
    spec = importlib.util.spec_from_file_location(f"{path.stem}_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def cli_exit(capsys):
    """``cli_exit(*argv)``: (exit status, stderr) of ``dwn-hw ARGV`` under the command line's error policy."""
    from dwn_hw.cli import main

    def run(*argv):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in argv])
        return e.value.code, capsys.readouterr().err
    return run
