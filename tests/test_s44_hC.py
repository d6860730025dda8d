"""Session 44, hC: work done once and code written once (images, rerank, data, name_captions), outputs unchanged."""

from __future__ import annotations

from t2i_cli import name_captions
from t2i_cli.models import tokenizer


def test_name_captions_keycap_flag_and_number_marks_read_as_before():
    """The keycap, the subdivision flag and the "No." words are the tokenizer's / one definition: captions as before."""
    assert name_captions._KEYCAP == ord(tokenizer.KEYCAP) and name_captions._BLACK_FLAG == ord(tokenizer.BLACK_FLAG)
    cases = {"Symphony No. 5": "symphony no 5", "nr.3 track": "nr 3 track", "0023-fe0f-20e3": "keycap number sign",
             "1f3f4-e0067-e0062-e0065-e006e-e0067-e007f": "flag england", "u+0023 u+fe0f u+20e3": "keycap number sign",
             "#\ufe0f\u20e3 key": "keycap number sign key", "1\u20e3": "keycap digit one",
             "\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F": "flag scotland"}
    assert {name: name_captions.caption_of(name) for name in cases} == cases
