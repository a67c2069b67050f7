"""`dwn-hw train --shift N`: random translations of the training images."""
import numpy as np
import pytest
import torch

from dwn_hw.cli import main
from dwn_hw.errors import DwnHwError
from dwn_hw.train import augment, checkpoint
from dwn_hw.train.loop import TrainConfig, run


def reference_shift(img: np.ndarray, dy: int, dx: int, fill: float) -> np.ndarray:
    out = np.full_like(img, fill)
    h, w = img.shape
    for i in range(h):
        for j in range(w):
            if 0 <= i - dy < h and 0 <= j - dx < w:
                out[i, j] = img[i - dy, j - dx]
    return out


def test_shift_images_matches_a_pixel_loop():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(50, 5 * 7, generator=g)
    off = augment.draw_offsets(50, 2, g)
    assert off.shape == (50, 2) and off.min() == -2 and off.max() == 2  # 50 draws cover the range
    got = augment.shift_images(x, [5, 7], off, fill=-1.5).numpy()
    for b in range(50):
        want = reference_shift(x[b].reshape(5, 7).numpy(), int(off[b, 0]), int(off[b, 1]), -1.5)
        np.testing.assert_array_equal(got[b].reshape(5, 7), want)
    zero = torch.zeros((50, 2), dtype=torch.int64)
    assert augment.shift_images(x, [5, 7], zero, 0.0) is x


@pytest.mark.parametrize("shift,shape,message", [
    (-1, [8, 8], "non-negative"), (1, None, "not the pixels of an image"), (8, [8, 8], "not smaller")])
def test_bad_shift_refused(shift, shape, message):
    with pytest.raises(DwnHwError, match=message):
        augment.check_shift(shift, shape)
    augment.check_shift(0, None)


def test_shift_changes_training_and_resumes_exactly(tmp_path):
    tiny = dict(bits=2, layers=[40], n=[3], batch_size=128, lr_step=1, gamma=0.5)
    plain, a, b = tmp_path / "p.pt", tmp_path / "a.pt", tmp_path / "b.pt"
    run(TrainConfig(**tiny, epochs=2), str(plain), progress=False)
    run(TrainConfig(**tiny, epochs=2, shift=1), str(a), progress=False)
    run(TrainConfig(**tiny, epochs=1, shift=1), str(b), progress=False)
    run(TrainConfig(), str(b), resume=True, epochs_override=2, progress=False)
    rp, ra, rb = (checkpoint.read_record(p) for p in (plain, a, b))
    assert ra["options"]["shift"] == 1 and rb["options"]["shift"] == 1 and rp["options"]["shift"] == 0
    assert ra["data"]["image_shape"] == [8, 8]
    # the shifted images were seen: the training differs from the plain run's
    assert any(not torch.equal(rp["state_dict"][k], ra["state_dict"][k]) for k in ra["state_dict"])
    # and a resumed shifted run continues exactly (the offsets come from the recorded generator)
    for key, value in ra["state_dict"].items():
        assert torch.equal(value, rb["state_dict"][key]), key


def test_cli_shift_on_non_image_data_is_one_line_exit_2(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    with pytest.raises(SystemExit) as exc:
        main(["train", "-q", "--dataset", f"csv:{csv}", "--shift", "1", "-o", str(tmp_path / "m.pt")])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: --shift moves images; this data set's features are not the pixels of an image "
                     "(use digits, mnist or fashion-mnist)"]
    assert not (tmp_path / "m.pt").exists()


def test_ddp_ranks_draw_alike_and_take_their_own_rows():
    from dwn_hw.train.loop import Dist, local_chunk

    gens = [torch.Generator().manual_seed(7) for _ in range(3)]
    whole = augment.draw_offsets(9, 2, gens[0])  # one process, a batch of 9
    parts = [local_chunk(augment.draw_offsets(9, 2, g), Dist(rank, 2)) for rank, g in enumerate(gens[1:])]
    assert [len(p) for p in parts] == [5, 4]
    assert torch.equal(torch.cat(parts), whole)
    # every rank's generator moved on by the same draws, so the next batch's permutation agrees
    assert all(torch.equal(g.get_state(), gens[0].get_state()) for g in gens[1:])
