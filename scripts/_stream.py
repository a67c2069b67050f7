"""Run a command with its output echoed, indented, as it comes; shared by demo.py and mnist.py."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def run_streamed(cmd: list[str], cwd: Path | None = None, env: dict | None = None) -> tuple[int, str, float]:
    """Run ``cmd``, echoing each output line (stdout and stderr together) indented by four spaces.

    Returns the exit status, the whole output and the wall time in seconds.
    """
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace")
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write("    " + line)
        sys.stdout.flush()
        lines.append(line)
    rc = proc.wait()
    return rc, "".join(lines), time.monotonic() - start
