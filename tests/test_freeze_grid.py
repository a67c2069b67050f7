"""Grid thresholds: q > q_θ equals x(q) > θ for every grid value, for awkward scales."""
import numpy as np
import pytest

from dwn_hw.errors import DwnHwError
from dwn_hw.ir import grid_thresholds, grid_x, quantize, random_ir
from dwn_hw.ir.grid import grid_bounds


def _awkward_thetas(scale: np.ndarray, qmin: int, qmax: int, rng) -> np.ndarray:
    """Per feature: every grid x exactly, its float32 neighbours, random values, and off-grid values."""
    rows = []
    for s in scale:
        xs = grid_x(np.arange(qmin, qmax + 1), s)
        exact = xs
        up = np.nextafter(xs, np.float32(np.inf))
        down = np.nextafter(xs, np.float32(-np.inf))
        lo, hi = float(xs[0]), float(xs[-1])
        span = hi - lo + 1
        rand = rng.uniform(lo - 0.1 * span, hi + 0.1 * span, size=50).astype(np.float32)
        off = np.array([lo - span, hi + span, -np.inf, np.inf, lo, hi], dtype=np.float32)
        rows.append(np.concatenate([exact, up, down, rand, off]))
    return np.stack(rows).astype(np.float32)


@pytest.mark.parametrize("scale,bits,signed", [
    (1 / 3, 6, False),
    (255.0, 8, False),
    (0.1, 7, True),
    (1.0, 5, False),
    (3.7, 4, True),
    ([1 / 3, 0.1, 255.0, 7.0, 1e-3], 6, True),   # per feature
    ([2.0 ** -20, 1e6], 5, False),
])
def test_grid_threshold_matches_float_compare_on_every_grid_value(scale, bits, signed):
    rng = np.random.default_rng(0)
    qmin, qmax = grid_bounds(bits, signed)
    F = len(scale) if isinstance(scale, list) else 3
    s = np.broadcast_to(np.asarray(scale, dtype=np.float32), (F,))
    theta = _awkward_thetas(s, qmin, qmax, rng)
    th = grid_thresholds(theta, scale, bits, signed)
    assert th.shape == theta.shape and th.dtype == np.int64
    assert th.min() >= qmin - 1 and th.max() <= qmax
    q = np.arange(qmin, qmax + 1)
    for f in range(F):
        x = grid_x(q, s[f])                                           # float32, as the model sees it
        want = x[None, :] > theta[f][:, None]                        # the model's float comparison
        got = q[None, :] > th[f][:, None]                            # the hardware's integer comparison
        np.testing.assert_array_equal(got, want, err_msg=f"feature {f}")


@pytest.mark.parametrize("scale", [0.3, 3.0, 1 / 255])
def test_floor_of_theta_times_scale_is_not_the_same(scale):
    """The reason for the search: floor(θ·scale), in float32 or float64, disagrees with the model."""
    scale, bits = np.float32(scale), 8
    qmin, qmax = grid_bounds(bits, False)
    q = np.arange(qmin, qmax + 1)
    x = grid_x(q, scale)
    theta = np.concatenate([x, np.nextafter(x, np.float32(-np.inf))])   # on and just below grid points
    searched = grid_thresholds(theta[None, :], scale, bits, False)[0]
    np.testing.assert_array_equal(q[None, :] > searched[:, None], x[None, :] > theta[:, None])
    for naive in (np.floor(theta * scale), np.floor(theta.astype(np.float64) * np.float64(scale))):
        naive = naive.astype(np.int64)
        assert (naive != searched).any()
        assert ((q[None, :] > naive[:, None]) != (x[None, :] > theta[:, None])).any()


def test_off_grid_thresholds_clamp():
    th = grid_thresholds(np.array([[-5.0, 100.0, -np.inf, np.inf]]), 1.0, 4, False)
    assert th.tolist() == [[-1, 15, -1, 15]]
    th = grid_thresholds(np.array([[-500.0, 500.0]]), 1.0, 4, True)
    assert th.tolist() == [[-9, 7]]


def test_broadcast_row_and_bad_values():
    th = grid_thresholds(np.array([[0.5, 2.5]]), np.array([1.0, 2.0, 4.0]), 4, False)
    assert th.tolist() == [[0, 2], [1, 5], [2, 10]]
    with pytest.raises(DwnHwError, match="NaN"):
        grid_thresholds(np.array([[np.nan]]), 1.0, 4, False)
    with pytest.raises(DwnHwError, match="scale"):
        grid_thresholds(np.array([[1.0]]), -1.0, 4, False)
    with pytest.raises(DwnHwError, match="input bits"):
        grid_thresholds(np.array([[1.0]]), 1.0, 40, False)


def test_quantize_rounds_and_clips_onto_the_ir_grid():
    ir = random_ir(0, features=3, input_bits=4, signed=True, scale=2.0)
    q = quantize(ir, np.array([[0.26, -0.24, 100.0], [-100.0, 1.25, 0.75]]))
    assert q.dtype == np.int64
    assert q.tolist() == [[1, 0, 7], [-8, 2, 2]]      # rint: 2.5 -> 2, 1.5 -> 2 (half to even)
    with pytest.raises(DwnHwError, match="NaN"):
        quantize(ir, np.array([[np.nan, 0, 0]]))
    with pytest.raises(DwnHwError, match="grid"):
        quantize(object(), np.zeros((1, 3)))
