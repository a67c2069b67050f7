"""Data sets, all offline, all on an integer input grid (numpy only; scikit-learn for digits).

A data set spec is ``digits`` (the default: scikit-learn's bundled 8x8 digits), ``mnist``,
``fashion-mnist``, ``csv:PATH`` or ``npz:PATH``. Every split is fixed and recorded: digits and
CSV files use a stratified 80/20 split with seed 0, the others their own train/test files.
:func:`load_dataset` returns grid integers; :func:`load_test_set` rebuilds exactly the test set
that a checkpoint recorded and checks it against the recorded sha256.
"""
from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dwn_hw.errors import DwnHwError, show, warn
from dwn_hw.datasets import readers
from dwn_hw.datasets.grid import Grid

BUILTIN = ("digits", "mnist", "fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
TEST_FRACTION = 0.2
SPLIT_SEED = 0
DEFAULT_INPUT_BITS = 8  # for non-integer data when --input-bits is not given


@dataclass
class DataSet:
    """Grid integers and labels of one data set, with everything a checkpoint records about it."""

    q_train: np.ndarray  # int64 [N, F]
    y_train: np.ndarray  # int64 [N]
    q_test: np.ndarray
    y_test: np.ndarray
    grid: Grid
    class_names: list[str]
    meta: dict  # spec, options, split, sizes, test_sha256 (goes into the checkpoint as "data")
    q_val: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    y_val: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def num_features(self) -> int:
        return self.q_train.shape[1]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def test_sha256(q_test: np.ndarray) -> str:
    """sha256 of the test inputs as little-endian C-ordered int64 bytes."""
    return hashlib.sha256(np.ascontiguousarray(q_test, dtype="<i8").tobytes()).hexdigest()


def stratified_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out): per class, a seeded shuffle puts ``round(fraction·n_c)`` aside.

    Written here rather than taken from scikit-learn so that a recorded split stays the same
    across library versions. Classes with one sample stay on the ``keep`` side.
    """
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        take = int(round(fraction * len(idx))) if len(idx) > 1 else 0
        take = min(take, len(idx) - 1)
        held.append(idx[:take])
    held = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    keep = np.setdiff1d(np.arange(len(y)), held)
    return keep, held


def _labels(y: np.ndarray, what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.dtype.kind == "f":
        bad = np.flatnonzero(y != np.round(y))
        if bad.size:
            raise DwnHwError(f"labels out of range: {what} has label {show(y[bad[0]])} (row {bad[0]}); "
                             "labels must be integers 0..K-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        i = int(np.argmin(y))
        raise DwnHwError(f"labels out of range: {what} has label {y[i]} (row {i}); labels must be 0..K-1")
    return y


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``digits`` -> ("digits", None); ``csv:PATH`` -> ("csv", PATH)."""
    if spec in BUILTIN:
        return spec, None
    kind, sep, path = spec.partition(":")
    if sep and kind in ("csv", "npz") and path:
        return kind, path
    raise DwnHwError(f"unknown data set {spec!r}; use digits, mnist, fashion-mnist, csv:PATH or npz:PATH")


def _raw(spec: str, csv_options: dict) -> dict:
    """The data of a spec before the grid: x (float or integer), y, declared grid, split."""
    kind, path = parse_spec(spec)
    if kind == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return {"x": x.astype(np.int64), "y": y.astype(np.int64), "declared": Grid(1.0, 5, False),
                "names": [str(i) for i in range(10)], "split": "stratified", "image": [8, 8]}
    if kind == "mnist":
        d = readers.load_mnist()
        return {**d, "declared": Grid(1.0, 8, False), "names": [str(i) for i in range(10)], "split": "given",
                "image": [28, 28]}
    if kind == "fashion-mnist":
        d = readers.load_fashion_mnist()
        return {**d, "declared": Grid(1.0, 8, False), "names": list(FASHION_CLASSES), "split": "given",
                "image": [28, 28]}
    if kind == "csv":
        x, y, _ = readers.read_csv(path, csv_options.get("label_column"), csv_options.get("header", "auto"))
        return {"x": x, "y": y, "declared": None, "names": None, "split": "stratified"}
    d = readers.read_npz(path)
    return {**d, "declared": None, "names": None, "split": "given"}


def _split(raw: dict) -> dict:
    """Fills x_train/.../y_test; records how."""
    if raw["split"] == "given":
        raw["split_meta"] = {"method": "given"}
        return raw
    y = _labels(raw["y"], "the data")
    keep, held = stratified_split(y, TEST_FRACTION, SPLIT_SEED)
    raw.update(x_train=raw["x"][keep], y_train=y[keep], x_test=raw["x"][held], y_test=y[held])
    raw["split_meta"] = {"method": "stratified", "test_fraction": TEST_FRACTION, "seed": SPLIT_SEED}
    return raw


def _as_x(raw_x: np.ndarray, declared: Grid | None) -> np.ndarray:
    """What the grid is fitted on and quantizes: the declared grid's x, or the raw values."""
    return declared.to_x(raw_x) if declared is not None else np.asarray(raw_x, dtype=np.float64)


def _choose_grid(raw: dict, input_bits: int | None) -> Grid:
    declared = raw["declared"]
    if input_bits is not None:
        return Grid.fit(_as_x(raw["x_train"], declared), int(input_bits))
    if declared is not None:
        return declared
    x = np.asarray(raw["x_train"])
    if x.dtype.kind in "iub" or np.all(x == np.round(x)):
        return Grid.integers(x.astype(np.int64))
    print(f"note: the inputs are not integers; putting them on a {DEFAULT_INPUT_BITS}-bit grid "
          "(choose with --input-bits)", file=sys.stderr)
    return Grid.fit(x, DEFAULT_INPUT_BITS)


def load_dataset(spec: str = "digits", input_bits: int | None = None, val_split: float = 0.0,
                 seed: int = 0, csv_options: dict | None = None) -> DataSet:
    """Load a data set onto its integer grid.

    Parameters
    ----------
    spec : str
        ``digits``, ``mnist``, ``fashion-mnist``, ``csv:PATH`` or ``npz:PATH``.
    input_bits : int or None
        Put the inputs on a ``B``-bit grid with per-feature scales (signed when the training
        data has negatives). None keeps the data set's own grid (integer data: scale 1).
    val_split : float
        Fraction of the training set held out for validation (stratified, seeded by ``seed``).
    csv_options : dict
        ``label_column`` (name or index) and ``header`` (auto|yes|no) for ``csv:`` specs.
    """
    csv_options = dict(csv_options or {})
    if not 0.0 <= val_split < 1.0:
        raise DwnHwError(f"--val-split must be in [0, 1), not {show(val_split)}")
    raw = _split(_raw(spec, csv_options))
    y_train = _labels(raw["y_train"], "the training set")
    y_test = _labels(raw["y_test"], "the test set")
    if len(y_train) == 0 or len(y_test) == 0:
        raise DwnHwError(f"data set {spec!r} has {len(y_train)} training and {len(y_test)} test samples; "
                         "it needs both")
    k = int(y_train.max()) + 1
    if y_test.max() >= k:
        raise DwnHwError(f"labels out of range: the test set has label {int(y_test.max())} but the training "
                         f"labels are 0..{k - 1}")
    names = raw["names"] or [str(i) for i in range(k)]
    if k > len(names):
        raise DwnHwError(f"labels out of range: labels reach {k - 1} but {spec} has {len(names)} classes")
    present = np.unique(np.concatenate([y_train, y_test]))
    if len(present) < 2:
        raise DwnHwError(f"data set {spec!r} has one class only (every label is {int(present[0])}); a classifier "
                         "needs at least two: check the labels"
                         + (" and --label-column" if spec.startswith("csv:") else ""))
    missing = np.setdiff1d(np.arange(k), np.unique(y_train))
    if missing.size:
        listed = ", ".join(names[int(c)] for c in missing[:8]) + (", ..." if missing.size > 8 else "")
        warn(f"{missing.size} of {k} classes have no training sample in {spec} (class {listed}; labels are "
             f"0..{k - 1}): the model can never learn them; check the labels"
             + (" and --label-column" if spec.startswith("csv:") else ""))
    grid = _choose_grid(raw, input_bits)
    q_train = grid.quantize(_as_x(raw["x_train"], raw["declared"]))
    q_test = grid.quantize(_as_x(raw["x_test"], raw["declared"]))
    meta = {"spec": spec, "csv": csv_options, "input_bits_option": input_bits,
            "split": raw["split_meta"], "n_train": int(len(q_train)), "n_test": int(len(q_test)),
            "features": int(q_train.shape[1]), "test_sha256": test_sha256(q_test)}
    if raw.get("image"):
        meta["image_shape"] = list(raw["image"])  # features are the pixels of one image, row by row
    if spec.startswith(("csv:", "npz:")):
        meta["path"] = str(Path(parse_spec(spec)[1]).resolve())
    ds = DataSet(q_train, y_train, q_test, y_test, grid, names, meta)
    if val_split > 0:
        keep, held = stratified_split(y_train, val_split, seed)
        if len(held) == 0:
            raise DwnHwError(f"--val-split {val_split} leaves no validation samples")
        ds.q_val, ds.y_val = q_train[held], y_train[held]
        ds.q_train, ds.y_train = q_train[keep], y_train[keep]
    meta["val_split"] = {"fraction": float(val_split), "seed": int(seed), "n_val": int(len(ds.y_val))}
    return ds


def load_test_set(ckpt_meta: dict) -> tuple[np.ndarray, np.ndarray]:
    """Rebuild the test set a checkpoint recorded: ``(q_test int64 [N, F], y_test int64 [N])``.

    Raises :class:`DwnHwError` when the data no longer matches the recorded sha256 (the data
    file changed, or a library changed the bundled data).
    """
    try:
        data, grid = ckpt_meta["data"], Grid.from_meta(ckpt_meta["grid"])
        spec = data["spec"]
        kind, _ = parse_spec(spec)
        if kind in ("csv", "npz") and data.get("path"):
            spec = f"{kind}:{data['path']}"
        raw = _split(_raw(spec, dict(data.get("csv") or {})))
        expected = data["test_sha256"]
    except KeyError as exc:
        raise DwnHwError(f"checkpoint metadata lacks {exc.args[0]!r}; cannot rebuild its test set") from None
    q_test = grid.quantize(_as_x(raw["x_test"], raw["declared"]))
    got = test_sha256(q_test)
    if got != expected:
        raise DwnHwError(f"test set of {data['spec']!r} does not match the checkpoint (sha256 {got[:12]}..., "
                         f"recorded {expected[:12]}...); the data changed since training")
    return q_test, _labels(raw["y_test"], "the test set")
