"""The hardware wing never imports torch: every module of it and of the IR door imports, and export -> sim ->
synth of an IR runs through ``dwn-hw``, in a process where importing torch raises."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The door (ir) and the hardware wing; export_cli imports the torch wing only for a checkpoint.
PACKAGES = ("ir", "hdl", "check", "synth")
MODULES = ("export", "export_cli", "bundle", "outputs", "fsutil", "tools", "resources", "cli", "errors")

SCRIPT = textwrap.dedent('''
    import importlib.abc, sys

    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ImportError(f"this process has no torch (asked for {name})")
            return None

    sys.meta_path.insert(0, NoTorch())

    import importlib, pkgutil
    from pathlib import Path

    root, packages, modules, work = Path(sys.argv[1]), sys.argv[2].split(","), sys.argv[3].split(","), Path(sys.argv[4])
    names = [f"dwn_hw.{m}" for m in modules if (root / "dwn_hw" / f"{m}.py").exists()]
    for pkg in packages:
        base = root / "dwn_hw" / pkg
        if base.is_dir():
            names += [f"dwn_hw.{pkg}"] + [f"dwn_hw.{pkg}.{p.stem}" for p in sorted(base.glob("*.py"))
                                           if p.stem != "__init__"]
    for name in names:
        importlib.import_module(name)
    print("imported", len(names))

    from dwn_hw.cli import main
    from dwn_hw.ir import save
    from dwn_hw.ir.random import random_ir

    save(random_ir(3, features=4, bits_per_feature=3, input_bits=4, layers=[(12, 3), (8, 2)], k=2), work / "m.json")

    def dwn(*argv):
        try:
            main(list(argv))
        except SystemExit as exc:
            assert exc.code in (0, None), f"dwn-hw {' '.join(argv)}: exit {exc.code}"

    dwn("export", str(work / "m.json"), "-o", str(work / "b"), "--board", "arty_a7")
    dwn("sim", str(work / "b"))
    dwn("synth", str(work / "b"), "--board", "arty_a7", "--no-board-build")
    assert "torch" not in sys.modules
    print("flow ok")
''')


def test_hardware_wing_never_imports_torch(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT), ",".join(PACKAGES), ",".join(MODULES),
                           str(tmp_path)], capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "flow ok" in proc.stdout
