"""Pins of image prompts (image_prompt.py) and image files (images.py): behaviour a mutation audit found that no
test pinned down (each test fails on a mutant the audit made of the line it names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from t2i_cli.errors import UsageError
from t2i_cli.image_prompt import ImagePrompt, build, check_strength, keep_top_cells, redrawn_cells
from t2i_cli.images import contact_sheet, image_size, load_rgb, to_rgb
from t2i_cli.models.dvae import DVAE, DVAEConfig


def with_orientation(img: Image.Image, path: Path, orientation: int) -> Path:
    exif = Image.Exif()
    exif[0x0112] = orientation
    img.save(path, exif=exif)
    return path


def test_vary_at_a_tiny_strength_still_redraws_one_cell():
    """`vary --strength 0.01` on a 4x4 grid would otherwise redraw nothing (an output identical to its source)."""
    assert redrawn_cells(16, 0.01) == 1
    assert redrawn_cells(16, 1.0) == 16


def test_strength_1_redraws_every_cell_and_is_accepted():
    """--strength 1 is documented as "redraw every cell"; refusing it would break that."""
    check_strength(1)
    check_strength(1.0)
    with pytest.raises(UsageError):
        check_strength(1.01)


def test_keep_top_rounds_the_share_of_rows_to_the_nearest():
    """--keep-top 0.4 of a 4-row grid keeps 2 rows (1.6 rounded), not 1 (truncated)."""
    assert int(keep_top_cells(4, 0.4).sum()) == 8
    assert keep_top_cells(4, 0.4).view(4, 4)[:2].all()


def test_n_redrawn_counts_the_cells_that_are_not_kept():
    """A complete prompt keeping 1 row of 4 draws 12 cells (progress and seeds are sized by it), not 4."""
    keep = keep_top_cells(4, 0.25)
    prompt = ImagePrompt("complete", torch.zeros(16, dtype=torch.long), "x", keep=keep, keep_top=0.25)
    assert prompt.n_redrawn == 12


def test_a_mask_of_another_aspect_than_the_image_is_refused(tmp_path):
    """A 100x95 mask on a 100x100 image (5% off) would cover another picture than the one redrawn."""
    Image.new("RGB", (100, 100), (10, 20, 30)).save(tmp_path / "src.png")
    Image.new("L", (100, 95), 255).save(tmp_path / "mask.png")
    torch.manual_seed(0)
    dvae = DVAE(DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8))
    with pytest.raises(UsageError, match="shapes differ"):
        build(dvae, tmp_path / "src.png", mask=tmp_path / "mask.png")


@pytest.mark.parametrize("orientation", [5, 7])
def test_image_size_turns_a_transposed_orientation(tmp_path, orientation):
    """A photo tagged with EXIF orientation 5 or 7 is shown turned a quarter: a mask drawn over it is 20x40."""
    path = with_orientation(Image.new("RGB", (40, 20), (0, 0, 255)), tmp_path / "p.png", orientation)
    assert image_size(path) == (20, 40)


def test_a_32_bit_grey_image_in_the_8_bit_range_is_not_stretched():
    """An "I" image of value 100 loads as grey 100, not stretched to white."""
    assert to_rgb(Image.new("I", (4, 4), 100)).getpixel((1, 1)) == (100, 100, 100)


def test_a_contact_sheet_of_5_tiles_in_4_columns_has_2_rows():
    """The fifth sample of a sheet would fall off the bottom of a 1-row sheet."""
    tiles = [Image.new("RGB", (10, 10), (i * 40, 0, 0)) for i in range(5)]
    sheet = contact_sheet(tiles, columns=4)
    assert sheet.size == (4 * 14 + 4, 2 * 14 + 4)
    assert sheet.getpixel((4 + 5, 4 + 14 + 5)) == (160, 0, 0)  # the fifth tile, second row


def test_a_png_tagged_upside_down_loads_rotated_180(tmp_path):
    """A picture with EXIF orientation 3 trains and prompts the way it is shown, not upside down."""
    stored = Image.new("RGB", (20, 20), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 20, 10))  # red on top as stored
    path = with_orientation(stored, tmp_path / "p.png", 3)
    shown = np.asarray(load_rgb(path, 20)).astype(int)
    assert shown[-4:, :, 0].mean() > 200 and shown[:4, :, 2].mean() > 200  # red at the bottom as shown
