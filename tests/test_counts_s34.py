"""Counts in t2i's messages read as counts: "1 unreadable picture", "2 unreadable pictures", never "picture(s)"."""

from __future__ import annotations

import pytest

from t2i_cli import images
from t2i_cli.errors import counted


@pytest.mark.parametrize("n, what, said", [
    (1, "link to a missing file", "1 link to a missing file"),
    (2, "link to a missing file", "2 links to a missing file"),
    (3, "contact sheet t2i wrote", "3 contact sheets t2i wrote"),
    (2, "picture without a prompt (pass --prompt)", "2 pictures without a prompt (pass --prompt)"),
    (0, "item", "0 items"),
    (2, "text file", "2 text files"),
    (2, "file not a picture", "2 files not a picture"),
    (5, "validation", "5 validations"),
    (2, "tensor", "2 tensors"),
])
def test_a_count_makes_its_head_noun_plural_and_only_that(n, what, said):
    assert counted(n, what) == said


def test_a_format_t2i_cannot_read_is_counted_in_the_plural():
    said = "2 HEIC pictures (t2i cannot read HEIC: convert to JPEG or PNG)"
    assert counted(2, images.unread_picture(".heic")) == said
    assert counted(1, images.unread_picture(".NEF")).startswith("1 camera raw picture (")
