"""``dwn-hw export``: write a self-contained hardware bundle from a checkpoint or an IR file.

Bundle layout (docs/design.md, "An export bundle")::

    OUT/rtl/dwn_top.v            the core (Amaranth + generated LUT arrays), lint-clean
    OUT/rtl/dwn_stream.v         with --wrap stream: the ready/valid wrapper
    OUT/rtl/lint_waivers.vlt     the -Wall style waivers, each with its reason
    OUT/rtl/<family>/dwn_top.v   per --board family with LUT primitives (xilinx, ice40, ecp5)
    OUT/dwn.ir.json              the IR the Verilog was generated from
    OUT/bundle.json              ports, latency, widths, where the expectations came from
    OUT/vectors/vectors.npz      inputs, scores, classes
    OUT/tb/, OUT/Makefile        `make sim`: the cocotb bench on Verilator
    OUT/synth/<board>/           per --board
    OUT/README.md                what each file is

IR in, bundle out; no torch here. A checkpoint given to ``dwn-hw export`` is frozen first by the command
(:mod:`dwn_hw.export_cli`, the torch wing's ``bundle_inputs``), then exported here.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path

import click
import numpy as np

from dwn_hw.errors import DwnHwError

RTL_NAME = "dwn_top"
STREAM_NAME = "dwn_stream"
WRAPS = ("none", "stream")


def edge_and_random_inputs(ir: dict, count: int = 256, seed: int = 0) -> np.ndarray:
    """The vectors of an IR without a recorded test set: :func:`dwn_hw.ir.vectors.edge_inputs`."""
    from dwn_hw.ir.vectors import edge_inputs

    return edge_inputs(ir, count=count, seed=seed)


def _recorded_vectors(ir: dict, ir_path: Path):
    """The test set an IR file points at (``meta.test_set.npz``, relative to the IR), or None."""
    ref = (ir.get("meta") or {}).get("test_set")
    if not isinstance(ref, dict) or not ref.get("npz"):
        return None
    path = Path(ref["npz"])
    path = path if path.is_absolute() else ir_path.parent / path
    if not path.is_file():
        raise DwnHwError(f"the IR's meta.test_set.npz {str(path)!r} does not exist")
    with np.load(path) as data:
        if "inputs" not in data:
            raise DwnHwError(f"{path} has no 'inputs' array")
        return np.asarray(data["inputs"])


# ---------------------------------------------------------------- where the bundle goes, and --force

# Tool outputs inside a bundle (simulator, verify and synth builds, byte-code caches, the synth
# reports, which describe the old core, and the run-sim folder of older versions): dropped when
# --force replaces the bundle. Everything else that the bundle did not write is carried over.
def _tool_output(rel: Path) -> bool:
    parts = rel.parts
    return (parts[0] in ("build", "uart_sim") or "__pycache__" in parts
            or (len(parts) >= 3 and parts[0] == "synth" and parts[2] in ("build", "report.json")))


def resolve_out(out) -> Path:
    """The bundle folder as an absolute path with every symlink and ``..`` resolved."""
    path = Path(out).expanduser().resolve()
    if path.parent == path:
        raise DwnHwError(f"-o {str(out)!r} is the file system root; give a folder for the bundle")
    return path


def check_out(out, force: bool) -> dict | None:
    """Refuse an ``out`` that may not be written; return the old bundle's ``bundle.json`` when
    ``force`` replaces one (None when ``out`` does not exist)."""
    from dwn_hw.bundle import FILE, is_bundle

    path = Path(out)
    if not path.exists():
        return None
    ours = path.is_dir() and is_bundle(path)
    if not force:
        if ours:
            raise DwnHwError(f"{path} already exists; pass --force to replace that bundle "
                             "(files it did not write are kept)")
        raise DwnHwError(f"{path} already exists and is not a dwn-hw bundle; choose another -o "
                         "(--force replaces only a bundle)")
    if not path.is_dir():
        raise DwnHwError(f"{path} is a file, not a bundle folder; --force replaces only a dwn-hw bundle: "
                         "choose another -o")
    if not ours:
        old = _json_object(path / FILE)
        if old is not None and "format" not in old:
            raise DwnHwError(f"{path} was written by an older dwn-hw (its bundle.json has no format mark), so "
                             "--force does not replace it: delete the folder yourself, then export again")
        raise DwnHwError(f"{path} is not a dwn-hw bundle (no bundle.json with our format mark); --force "
                         "replaces only a bundle: choose another -o")
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise DwnHwError(f"{path} is the current folder (or holds it) and cannot be replaced while in use: "
                         "run the export from another folder or choose another -o")
    return _json_object(path / FILE)


def _json_object(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def carry_over(old: Path, new: Path, written) -> list[str]:
    """Put every file of the old bundle ``old`` that it did not write (``written``: its
    ``bundle.json`` ``files``) into ``new``; tool outputs are left behind. Returns the carried
    paths. A file of the user's that the new bundle would overwrite is refused, so nothing is lost."""
    from dwn_hw.fsutil import link_or_copy

    written = set(written)
    carried = []
    for root, dirs, files in os.walk(old):
        root = Path(root)
        rel_root = root.relative_to(old)
        for name in sorted(dirs):
            rel = rel_root / name
            if (root / name).is_symlink():
                files.append(name)                 # a link to a folder is carried as a link
            elif not _tool_output(rel):
                (new / rel).mkdir(parents=True, exist_ok=True)   # a user's (maybe empty) folder
        dirs[:] = [d for d in dirs if not (root / d).is_symlink() and not _tool_output(rel_root / d)]
        for name in sorted(files):
            rel = rel_root / name
            if rel.as_posix() in written or _tool_output(rel):
                continue
            if (new / rel).exists() or (new / rel).is_symlink():
                raise DwnHwError(f"{old / rel} is not a file the old bundle wrote, but the new bundle writes "
                                 f"{rel.as_posix()}: move it out of {old}, then export again")
            try:
                link_or_copy(root / name, new / rel)
            except OSError as exc:
                raise DwnHwError(f"cannot carry {old / rel} into the new bundle ({exc.strerror}); "
                                 "move it out of the folder, then export again") from None
            carried.append(rel.as_posix())
    return carried


def _listing(root: Path) -> list[str]:
    """Every file under ``root`` (relative, POSIX, sorted)."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


def _wire(width: int) -> str:
    return f"wire [{width - 1}:0]" if width > 1 else "wire"


def instantiation_template(module: str, ports, what: str, filename: str) -> str:
    """An include file: one wire per port (named ``<module>_<port>``, right width) and the instance."""
    from dwn_hw import __version__

    decl = [(f"{_wire(w)}", f"{module}_{name};", f"// {d} {name}: {m}") for name, d, w, m in ports]
    a = max(len(x[0]) for x in decl)
    b = max(len(x[1]) for x in decl)
    n = max(len(name) for name, *_ in ports)
    lines = [f"// Instantiation template of {module} ({what}), dwn-hw {__version__}.",
             f"// `include \"{filename}\" inside your module (or copy these lines), then drive the inputs",
             f"// and read the outputs; the header of the module's Verilog says ports, latency and in_data.",
             *(f"{x:<{a}} {y:<{b}} {z}" for x, y, z in decl),
             "",
             f"{module} u_{module} ("]
    conns = [f"  .{name:<{n}} ({module}_{name})" for name, *_ in ports]
    lines += [c + ("," if i < len(conns) - 1 else "") for i, c in enumerate(conns)] + [");"]
    return "\n".join(lines) + "\n"


def core_ports(bundle: dict):
    K, W = bundle["classes"], bundle["score_width"]
    return [("clk", "input", 1, "clock"), ("rst", "input", 1, "synchronous reset, active high"),
            ("in_valid", "input", 1, "in_data holds a sample"),
            ("in_data", "input", bundle["in_width"], "the sample (see bundle.json / README)"),
            ("out_valid", "output", 1, "a result is on out_class/out_scores"),
            ("out_class", "output", bundle["class_width"], "predicted class"),
            ("out_scores", "output", K * W, f"class c at [c*{W} +: {W}]")]


def stream_ports(bundle: dict):
    K, W = bundle["classes"], bundle["score_width"]
    return [("clk", "input", 1, "clock"), ("rst", "input", 1, "synchronous reset, active high"),
            ("s_valid", "input", 1, "s_data holds a sample"), ("s_ready", "output", 1, "the wrapper takes it"),
            ("s_data", "input", bundle["in_width"], "the sample: the core's in_data"),
            ("m_valid", "output", 1, "a result is on m_class/m_scores"), ("m_ready", "input", 1, "you take it"),
            ("m_class", "output", bundle["class_width"], "predicted class"),
            ("m_scores", "output", K * W, f"class c at [c*{W} +: {W}]")]


def _board_family(board: str) -> str | None:
    from dwn_hw.synth.boards import load_board

    return load_board(board).family


def model_inputs(model) -> dict:
    """``dict(ir, inputs, scores, classes, expected_from, name)`` of what :func:`export_bundle` is given.

    ``model`` is an IR file (``.json``), an IR dict, or what the torch wing prepared from a checkpoint
    (``dwn_hw.freeze.bundle_inputs``: a dict with ``ir``, ``inputs``, ``scores``, ``classes``, ``expected_from``).
    Without a recorded test set the vectors are :func:`dwn_hw.ir.vectors.edge_inputs`.
    """
    from dwn_hw import ir as irmod

    if isinstance(model, dict):
        if "ir" in model:
            return {"name": "checkpoint", **model, "ir": irmod.validate(model["ir"])}
        ir = irmod.validate(model)
        q = edge_and_random_inputs(ir)
        scores, classes = irmod.evaluate(ir, q)
        return {"ir": ir, "inputs": q, "scores": scores, "classes": classes, "expected_from": "ir", "name": "IR"}
    path = Path(model)
    if not path.exists():
        raise DwnHwError(f"model {str(path)!r} does not exist")
    if path.suffix != ".json":
        raise DwnHwError(f"{str(path)!r} is not an IR file (.json): export_bundle takes an IR; `dwn-hw export` "
                         "freezes a checkpoint first (or run `dwn-hw freeze` and export the IR)")
    ir = irmod.load(path)
    q = _recorded_vectors(ir, path)
    if q is None:
        q = edge_and_random_inputs(ir)
    scores, classes = irmod.evaluate(ir, q)
    return {"ir": ir, "inputs": q, "scores": scores, "classes": classes, "expected_from": "ir", "name": path.name}


def _render(template: str, **context) -> str:
    import jinja2

    from dwn_hw.resources import data_path

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(data_path("rtl_templates"))),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(template).render(**context)


def _copy_bench(dest: Path) -> list[str]:
    from dwn_hw.resources import data_path

    src = data_path("sim")
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for item in sorted(src.iterdir()):
        if item.name in ("__init__.py", "__pycache__") or item.name.startswith("."):
            continue
        if item.is_dir():
            shutil.copytree(item, dest / item.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, dest / item.name)
        copied.append(item.name)
    return copied


def export_bundle(model, out, inputs: str | None = None, pipeline="balanced", boards=(), force: bool = False,
                  wrap: str = "none", prefix: str = "", lut_style: str = "mux", estimate: bool = False,
                  notify=None) -> dict:
    """Write an export bundle; return its ``bundle.json`` contents.

    Parameters
    ----------
    model : path or dict
        An IR file (``.json``), an IR dict, or a checkpoint's frozen inputs (:func:`model_inputs`).
    out : path
        The bundle folder (symlinks and ``..`` resolved). If it exists it is refused, unless it is a
        dwn-hw bundle (``dwn_hw.bundle.is_bundle``) and ``force``: then it is replaced atomically (the
        old one stays until the new one is complete), and every file in it that the old bundle did
        not write (its ``bundle.json`` ``files``) is carried into the new one; tool outputs
        (``build/``, ``synth/<board>/build/``, ``__pycache__``) are dropped.
    inputs : {"features", "bits"} or None
        What ``in_data`` carries (None: features when the IR has an encoder).
    pipeline : str or PipelineSpec
        A preset or a token list (:mod:`dwn_hw.hdl.pipeline`).
    boards : sequence of str
        Boards to write ``synth/<board>/`` for.
    wrap : {"none", "stream"}
        Also write the ready/valid wrapper ``rtl/dwn_stream.v``.
    prefix : str
        Prefix of every module name (the top becomes ``<prefix>dwn_top``).
    lut_style : str
        How a LUT is written (:mod:`dwn_hw.hdl.lut`); only ``mux``, ``cell`` and ``expr`` simulate
        without vendor models.
    estimate : bool
        Run yosys ``synth_xilinx`` for a per-stage resource table in the README (minutes for large models).
    notify : callable or None
        Gets the one line saying which files were carried over (default: printed on stderr).

    Returns ``bundle.json``'s contents (``dwn_hw.bundle``'s fields, the mark included).
    """
    from dwn_hw import __version__
    from dwn_hw.bundle import FORMAT, write_bundle
    from dwn_hw.fsutil import atomic_dir
    from dwn_hw.hdl import build_top
    from dwn_hw.check.lint import WAIVER_FILE, WAIVERS
    from dwn_hw.ir import dumps, encode, grid_range

    if wrap not in WRAPS:
        raise DwnHwError(f"--wrap must be one of {', '.join(WRAPS)}, not {wrap!r}")
    out = resolve_out(out)
    check_out(out, force)
    boards = list(dict.fromkeys(boards))
    if boards:
        try:
            from dwn_hw.synth.boards import write_board_files
        except ImportError as exc:
            raise DwnHwError(f"--board needs the synthesis support (dwn_hw.synth), which is missing: {exc}") from None
    data = model_inputs(model)
    ir = data["ir"]
    if inputs is None:
        inputs = "features" if ir["encoder"]["kind"] == "thermometer" else "bits"
    text, info = build_top(ir, inputs=inputs, pipeline=pipeline, name=RTL_NAME, prefix=prefix, lut_style=lut_style)
    vec_in = np.asarray(data["inputs"])
    if inputs == "bits" and ir["encoder"]["kind"] == "thermometer":
        vec_in = encode(ir, vec_in)
    vec_in = vec_in.astype(np.uint8 if inputs == "bits" else np.int64)
    enc = ir["encoder"]
    features = inputs == "features"
    qmin, qmax = grid_range(enc) if features else (0, 1)
    bundle = {
        "top": info["top"], "latency": info["latency"], "in_width": info["in_width"],
        "features": int(enc["features"]) if features else info["num_input_bits"],
        "input_bits": int(enc["input_bits"]) if features else 1,
        "signed": bool(enc["signed"]) if features else False,
        "input_scale": enc["scale"] if features else None, "qmin": qmin, "qmax": qmax,
        "rounding": "nearest, ties to even (numpy rint)" if features else None,
        "classes": info["classes"], "class_width": info["class_width"], "score_width": info["score_width"],
        "inputs": inputs, "expected_from": data["expected_from"], "vectors": int(len(vec_in)),
        "pipeline": info["pipeline"], "lut_style": lut_style, "modules": info["modules"],
        "rtl": ["rtl/dwn_top.v"], "instantiate": ["rtl/dwn_top_inst.vh"], "dwn_hw_version": __version__,
    }
    stream_text = None
    if wrap == "stream":
        from dwn_hw.hdl.stream import stream_verilog

        stream_text, stream_info = stream_verilog(info, name=STREAM_NAME, prefix=prefix)
        bundle["stream"] = stream_info
        bundle["rtl"].append("rtl/dwn_stream.v")
        bundle["instantiate"].append("rtl/dwn_stream_inst.vh")
    # Device flows: the same core with the family's LUT primitives (yosys maps the portable styles
    # slowly: minutes of ABC for the MNIST shape), beside rtl/ so simulation never picks it up.
    # Each core's latency is the one its own build_top reports (device popcount trees may be deeper).
    device_rtl, device = {}, {}
    from dwn_hw.hdl.lut import DEVICE_STYLES

    for board in boards:
        family = _board_family(board)
        style = DEVICE_STYLES.get(family)
        if style and style != lut_style and family not in device_rtl:
            device_rtl[family], dinfo = build_top(ir, inputs=inputs, pipeline=pipeline, name=RTL_NAME,
                                                  prefix=prefix, lut_style=style)
            device[family] = {"rtl": f"rtl/{family}/dwn_top.v", "lut_style": style, "latency": dinfo["latency"]}
    if device:
        bundle["rtl_device"] = {family: device[family] for family in sorted(device)}
    resources = None
    if estimate:
        from dwn_hw.hdl.estimate import stage_estimate

        resources = stage_estimate(ir, inputs, pipeline)
        bundle["resources"] = resources
    carried: list[str] = []

    def keep_users_files(tmp: Path) -> None:
        if out.exists():
            old = _json_object(out / "bundle.json") or {}
            written = old.get("files") if isinstance(old.get("files"), list) else _listing(tmp)
            carried.extend(carry_over(out, tmp, written))

    with atomic_dir(out, force=force, before_swap=keep_users_files) as tmp:
        (tmp / "rtl").mkdir()
        (tmp / "rtl" / "dwn_top.v").write_text(text)
        (tmp / "rtl" / "dwn_top_inst.vh").write_text(
            instantiation_template(info["top"], core_ports(bundle), "the core", "dwn_top_inst.vh"))
        if stream_text is not None:
            (tmp / "rtl" / "dwn_stream.v").write_text(stream_text)
            (tmp / "rtl" / "dwn_stream_inst.vh").write_text(
                instantiation_template(bundle["stream"]["top"], stream_ports(bundle), "the ready/valid wrapper",
                                       "dwn_stream_inst.vh"))
        for family, device_text in device_rtl.items():
            (tmp / "rtl" / family).mkdir()
            (tmp / "rtl" / family / "dwn_top.v").write_text(device_text)
        (tmp / "rtl" / WAIVER_FILE).write_text(WAIVERS)
        (tmp / "dwn.ir.json").write_text(dumps(ir))
        (tmp / "vectors").mkdir()
        buf = io.BytesIO()
        np.savez_compressed(buf, inputs=vec_in, scores=np.asarray(data["scores"], dtype=np.int64),
                            classes=np.asarray(data["classes"], dtype=np.int64))
        (tmp / "vectors" / "vectors.npz").write_bytes(buf.getvalue())
        bench = _copy_bench(tmp / "tb")
        import jinja2

        try:  # the Makefile template belongs to the simulation side; a build without it has no Makefile
            makefile = _render("Makefile.j2", top=info["top"], bundle=bundle, python=sys.executable)
        except jinja2.TemplateNotFound:
            makefile = None
        if makefile is not None:
            (tmp / "Makefile").write_text(makefile)
        for board in boards:
            write_board_files(tmp, board, bundle)
        (tmp / "README.md").write_text(_render(
            "README.md.j2", bundle=bundle, boards=boards, bench=bench, has_makefile=makefile is not None,
            resources=resources, model_name=data["name"], waiver_file=WAIVER_FILE, ir=ir))
        # what this export wrote: --force replaces exactly these and carries everything else over
        bundle["files"] = sorted(set(_listing(tmp)) | {"bundle.json"})
        write_bundle(tmp, bundle)
    if carried:
        shown = ", ".join(carried[:5]) + (f" and {len(carried) - 5} more" if len(carried) > 5 else "")
        (notify or (lambda msg: click.echo(msg, err=True)))(
            f"kept {len(carried)} file(s) in {out} that no export wrote: {shown}")
    return {"format": FORMAT, **bundle}
