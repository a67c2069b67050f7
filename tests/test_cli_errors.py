"""The one error policy of every dwn-hw command line (dwn_hw.cli.run_command).

User errors end with exactly one ``error: ...`` line and exit status 2, Ctrl-C with one ``interrupted: ...``
line and 130, programming errors keep their traceback.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from dwn_hw.cli import cli, run_command
from dwn_hw.errors import DwnHwError, Interrupted

DWN = [sys.executable, "-m", "dwn_hw.cli"]


def run_cli(capsys, command, argv):
    """run_command in-process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        run_command(command, argv)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def one_line(err: str, prefix: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    assert "Traceback" not in err
    return lines[0]


@click.command("probe")
@click.option("--count", type=click.IntRange(min=1), default=1)
@click.option("--what", default="")
@click.argument("path", required=False)
def probe(count, what, path):
    """A command that raises what it is told to."""
    if what == "dwn":
        raise DwnHwError("the thing is wrong;\nfix it like this")
    if what == "read":
        open(path)
    if what == "kbd":
        raise KeyboardInterrupt
    if what == "abort":
        raise click.Abort()
    if what == "interrupted":
        raise Interrupted("the checkpoint is at X")
    if what == "bug":
        raise ZeroDivisionError("a bug")
    if what == "click":
        raise click.ClickException("click says no")
    click.echo(f"ok {count}")


@pytest.mark.parametrize("argv, needle", [
    (["--count", "0"], "--count"),
    (["--count", "x"], "not a valid integer"),
    (["--nope"], "no such option"),
    (["a", "b"], "unexpected extra argument"),
    (["--count"], "requires an argument"),
])
def test_usage_errors_are_one_line_with_the_help_hint(capsys, argv, needle):
    code, _, err = run_cli(capsys, probe, argv)
    line = one_line(err, "error: ")
    assert code == 2
    assert needle in line.lower()
    assert line.endswith("(see `dwn-hw --help`)")


def test_usage_error_of_a_subcommand_names_its_help(capsys):
    code, _, err = run_cli(capsys, cli, ["info"])
    line = one_line(err, "error: ")
    assert code == 2 and "missing argument 'MODEL'" in line and "`dwn-hw info --help`" in line
    code, _, err = run_cli(capsys, cli, ["nosuchcommand"])
    assert code == 2 and "nosuchcommand" in one_line(err, "error: ")


def test_user_error_is_one_line(capsys):
    code, _, err = run_cli(capsys, probe, ["--what", "dwn"])
    assert code == 2
    assert one_line(err, "error: ") == "error: the thing is wrong; fix it like this"
    code, _, err = run_cli(capsys, probe, ["--what", "click"])
    assert code == 2 and one_line(err, "error: ") == "error: click says no"


@pytest.mark.parametrize("make, hint", [
    (lambda tmp: tmp / "missing.csv", "no such file"),
    (lambda tmp: tmp, "is a folder"),
    (lambda tmp: (tmp / "f").write_text("x") and tmp / "f" / "under", "not a folder"),
])
def test_os_errors_on_paths_are_one_line(capsys, tmp_path, make, hint):
    path = make(tmp_path)
    code, _, err = run_cli(capsys, probe, ["--what", "read", str(path)])
    line = one_line(err, "error: cannot open ")
    assert code == 2 and str(path) in line and hint in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_permission_error_is_one_line(capsys, tmp_path):
    path = tmp_path / "secret"
    path.write_text("x")
    path.chmod(0)
    code, _, err = run_cli(capsys, probe, ["--what", "read", str(path)])
    assert code == 2 and "permission denied" in one_line(err, "error: cannot open ")


@pytest.mark.parametrize("what", ["kbd", "abort"])
def test_ctrl_c_is_one_interrupted_line(capsys, what):
    code, _, err = run_cli(capsys, probe, ["--what", what])
    assert code == 130
    assert "run it again" in one_line(err, "interrupted: ")


def test_interrupted_carries_the_commands_message(capsys):
    code, _, err = run_cli(capsys, probe, ["--what", "interrupted"])
    assert code == 130 and one_line(err, "interrupted: ") == "interrupted: the checkpoint is at X"


def test_programming_errors_keep_their_traceback(capsys):
    with pytest.raises(ZeroDivisionError):
        run_command(probe, ["--what", "bug"])


def test_success_help_and_version_exit_0(capsys):
    assert run_cli(capsys, probe, ["--count", "3"])[:2] == (0, "ok 3\n")
    code, out, _ = run_cli(capsys, probe, ["--help"])
    assert code == 0 and "--count" in out
    code, out, _ = run_cli(capsys, cli, ["--version"])
    assert code == 0 and "dwn-hw" in out


def test_real_subprocess_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dwn_hw.train", "--epochs", "0"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    line = one_line(proc.stderr, "error: ")
    assert "--epochs" in line and "python -m dwn_hw.train --help" in line


def test_ctrl_c_during_training_names_the_checkpoint_and_resume(tmp_path):
    from dwn_hw.train.checkpoint import load, read_record

    out = tmp_path / "m.pt"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from dwn_hw.cli import main; main()", "train", "-o", str(out), "--epochs", "500",
         "--layers", "20", "-q"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not out.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Aborted" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("interrupted: ") and sum(ln.startswith("interrupted") for ln in lines) == 1
    m = re.search(r"epoch (\d+) of 500 .* is at (.+); `dwn-hw train -o (.+) --resume` continues", lines[-1])
    assert m, lines[-1]
    assert Path(m.group(2)) == out
    rec = read_record(out)
    assert rec["train_state"]["epoch"] == int(m.group(1))
    assert len(load(out).classes) == 10
    # info says the run stopped early, and how to continue it
    info = subprocess.run(DWN + ["info", str(out), "--json"], capture_output=True, text=True, timeout=120)
    assert info.returncode == 0, info.stderr
    row = json.loads(info.stdout)["training"]
    assert f"stopped after epoch {m.group(1)} of 500" in row and "--resume" in row


def test_ctrl_c_before_any_checkpoint_says_nothing_was_written():
    from dwn_hw.train.loop import interrupt_message

    text = interrupt_message("m.pt", {"epoch": None, "epochs": 30})
    assert "nothing was written" in text and "m.pt" in text
    text = interrupt_message("my model.pt", {"epoch": 3, "epochs": 30})
    assert "epoch 3 of 30" in text and "-o 'my model.pt' --resume" in text
