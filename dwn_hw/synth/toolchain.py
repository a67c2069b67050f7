"""Which yosys / nextpnr / pack tools a flow runs, their versions, and running them with progress.

``yowasp`` (the default) uses the pinned YoWASP wheels beside this Python; ``system`` uses the
binaries on PATH after a version check, because old distribution packages (yosys 0.23,
nextpnr 0.4) lack what the flows need. No torch here.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

from dwn_hw import tools
from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_text

MIN_YOSYS = (0, 40)
MIN_NEXTPNR = (0, 7)
TOOLCHAINS = ("yowasp", "system")


class Toolchain:
    """Commands for one toolchain choice; ``versions`` records what ran."""

    def __init__(self, kind: str = "yowasp"):
        if kind not in TOOLCHAINS:
            raise DwnHwError(f"toolchain must be one of {', '.join(TOOLCHAINS)}, not {kind!r}")
        self.kind = kind
        self.versions: dict[str, str] = {}

    def _system(self, name: str) -> str:
        path = shutil.which(name)
        if not path:
            raise DwnHwError(f"--toolchain system: {name} is not on PATH (or use the default --toolchain yowasp)")
        return path

    def yosys(self) -> list[str]:
        cmd = tools.yosys_cmd() if self.kind == "yowasp" else [self._system("yosys")]
        if "yosys" not in self.versions:
            text = _version_text(cmd + ["-V"])
            self.versions["yosys"] = text
            _check_version("yosys", text, r"Yosys (\d+)\.(\d+)", MIN_YOSYS)
        return cmd

    def nextpnr(self, family: str) -> list[str]:
        cmd = tools.nextpnr_cmd(family) if self.kind == "yowasp" else [self._system(f"nextpnr-{family}")]
        key = f"nextpnr-{family}"
        if key not in self.versions:
            text = _version_text(cmd + ["--version"])
            self.versions[key] = text
            _check_version(key, text, r"nextpnr-(\d+)\.(\d+)", MIN_NEXTPNR)
        return cmd

    def pack(self, family: str) -> list[str]:
        name = {"ice40": "icepack", "ecp5": "ecppack"}[family]
        if self.kind == "yowasp":
            return [tools.find_tool(f"yowasp-{name}")]
        return [self._system(name)]


def _version_text(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except OSError as exc:
        raise DwnHwError(f"cannot run {cmd[0]}: {exc}") from exc
    lines = [line.strip() for line in (out.stdout + out.stderr).strip().splitlines() if line.strip()]
    # Keep the release and commit, not the compiler banner; YoWASP's first run prints "Preparing to run ..."
    # before the tool's own line, so every line is searched.
    for line in lines:
        m = re.search(r"Yosys [\w.+-]+(?: \(git sha1 [0-9a-f]+)?", line)
        if m:
            return m.group(0) + (")" if "(git" in m.group(0) else "")
        m = re.search(r"Version (nextpnr-[\w.+-]+)|(nextpnr-\d[\w.+-]*)", line)
        if m:
            return m.group(1) or m.group(2)
    return lines[-1] if lines else "unknown"


def _check_version(name: str, text: str, pattern: str, minimum: tuple[int, int]) -> None:
    m = re.search(pattern, text)
    if not m:
        return  # a development build without a release number: trust it
    found = (int(m.group(1)), int(m.group(2)))
    if found < minimum:
        raise DwnHwError(f"{name} {found[0]}.{found[1]} is too old (need ≥ {minimum[0]}.{minimum[1]}): "
                         f"use the default --toolchain yowasp")


def command_text(cmd: list[str]) -> str:
    """The command line as a user types it: the tool by its name (not the venv's absolute path).

    Every other argument is already relative to the folder the tool runs in, so the file reads as
    a shell script run from that folder with the tools on PATH (the venv's ``bin/`` for YoWASP).
    """
    line = shlex.join([Path(str(cmd[0])).name] + [str(c) for c in cmd[1:]])
    return f"# run in this folder, with {Path(str(cmd[0])).name} on PATH (the dwn-hw venv's bin/)\n{line}\n"


def run_tool(cmd: list[str], cwd: Path, log: Path, label: str, quiet: bool = False) -> str:
    """Run a tool, keep its whole output in ``log``, show progress; return the output.

    On a terminal one status line shows the elapsed time and the tool's latest line; elsewhere a
    line is printed every 15 s so a CI log shows the tool is alive. The command line is kept beside
    the log (``<log>.cmd``, :func:`command_text`, run from ``cwd``) to rerun the step by hand.
    """
    atomic_write_text(Path(log).with_suffix(".cmd"), command_text(cmd))
    start = time.monotonic()
    tty = sys.stderr.isatty() and not quiet
    last_print = start
    lines: list[str] = []
    env = dict(os.environ)
    with open(log, "w") as logf:
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", env=env)
        except OSError as exc:
            raise DwnHwError(f"cannot run {cmd[0]}: {exc}") from exc
        assert proc.stdout is not None
        for line in proc.stdout:
            logf.write(line)
            line = line.rstrip()
            if line:
                lines.append(line)
            now = time.monotonic()
            if tty and line:
                click.echo(f"\r  {label} {now - start:5.0f} s  {line[:70]:<70}", nl=False, err=True)
            elif not quiet and now - last_print >= 15:
                click.echo(f"  {label}: {now - start:.0f} s  {line[:90]}", err=True)
                last_print = now
        rc = proc.wait()
    elapsed = time.monotonic() - start
    if not quiet:
        click.echo(("\r" if tty else "") + f"  {label}: {'done' if rc == 0 else 'FAILED'} in {elapsed:.1f} s"
                   + " " * 60 * tty, err=True)
    text = "\n".join(lines)
    if rc != 0:
        raise ToolFailed(label, rc, log, lines)
    return text


class ToolFailed(tools.ToolFailed):
    """A tool exited non-zero: the one failure message (:func:`dwn_hw.tools.failure_message`: tool, exit
    status, last lines) naming the log; ``lines`` keeps the tool's output lines."""

    def __init__(self, label: str, rc: int, log: Path, lines: list[str]):
        super().__init__(label, rc, "\n".join(lines), log=log)
