"""Mutation audit (s42, helper hD): tests that kill mutants which survived the suite in world/negatives.py,
world/tasks.py, world/evaluate.py, models/transformer.py, images.py and outputs.py."""

from __future__ import annotations

import numpy as np
from PIL import Image

from t2i_cli import images


# ----------------------------------------------------------------------------- images.py
def test_a_16_bit_grey_pngs_transparent_level_is_the_background_and_black_stays_black(tmp_path):
    """A 16-bit grey PNG may mark one grey level transparent (tRNS, in its 16-bit values). Scaled to 8 bits, the
    level stayed in the picture's info and was applied to the 8-bit picture: its pixels read as dark grey, and
    pure black ones (level 4096's low byte, 0) as the white background."""
    a = np.full((4, 4), 30000, np.uint16)
    a[0, 0], a[3, 3] = 4096, 0
    Image.fromarray(a).save(tmp_path / "g16.png", transparency=4096)
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode == "I;16" and im.info["transparency"] == 4096
        got = np.asarray(images.to_rgb(im))
    assert got[0, 0].tolist() == [255, 255, 255]  # the transparent level: the background
    assert got[3, 3].tolist() == [0, 0, 0]  # black
    assert (got[1:3] == 116).all()  # 30000 of 65535
    assert np.asarray(images.load_rgb(tmp_path / "g16.png", 4)).tolist() == got.tolist()
    big = np.full((1100, 1000), 30000, np.uint16)  # more than a band of pixels: made RGB a band at a time
    big[:, :200] = 4096
    Image.fromarray(big).save(tmp_path / "big.png", transparency=4096)
    with Image.open(tmp_path / "big.png") as im:
        assert np.asarray(images.square_rgb(im, 16)).tolist() \
            == np.asarray(images.square(images.to_rgb(im), 16)).tolist()
        assert np.asarray(images.square_rgb(im, 16))[0, 0].tolist() == [255, 255, 255]
