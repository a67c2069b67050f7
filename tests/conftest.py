"""Shared test fixtures."""
import pytest


@pytest.fixture
def cli_exit(capsys):
    """``cli_exit(*argv)``: (exit status, stderr) of ``dwn-hw ARGV`` under the command line's error policy."""
    from dwn_hw.cli import main

    def run(*argv):
        with pytest.raises(SystemExit) as e:
            main([str(a) for a in argv])
        return e.value.code, capsys.readouterr().err
    return run
