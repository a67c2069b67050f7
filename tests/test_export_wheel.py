"""The wheel carries the templates and the bench: export from a fresh install, not the checkout."""
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_export_from_an_installed_wheel(tmp_path):
    wheel_dir = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            str(wheel_dir), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheel = next(wheel_dir.glob("dwn_hw-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    # Reuse this environment's packages (amaranth, numpy, ...) without installing them again.
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-2000:] + install.stderr[-2000:]

    work = tmp_path / "elsewhere"  # not the checkout: nothing may come from ROOT
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = """
import json, sys
import dwn_hw, dwn_hw.resources as r
from dwn_hw.ir import random_ir, save
from dwn_hw.export import export_bundle
save(random_ir(1, layers=[(12, 4), (6, 2)], k=2), "m.json")
info = export_bundle("m.json", "out", pipeline="max")
print(json.dumps({"pkg": dwn_hw.__file__, "sim": str(r.data_path("sim")),
                  "templates": str(r.data_path("rtl_templates")), "top": info["top"]}))
"""
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=work, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    where = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("pkg", "sim", "templates"):
        assert str(venv) in where[key] and str(ROOT) not in where[key], where
    bundle = work / "out"
    assert (bundle / "README.md").read_text().startswith("# dwn_top")
    assert sorted(p.name for p in (bundle / "tb").iterdir()) == sorted(
        p.name for p in Path(where["sim"]).iterdir() if p.name not in ("__init__.py", "__pycache__"))
    text = (bundle / "rtl" / "dwn_top.v").read_text()
    assert str(venv) not in text and str(work) not in text
