"""Fixes of the closing rounds of session 41, each with the input that showed it."""

from __future__ import annotations

import pytest

from t2i_cli.name_captions import caption_of


@pytest.mark.parametrize("name, caption", [
    ("100%BEEF", "100%beef"), ("ACE%DEAL", "ace%deal"),  # a percent sign in a name in capitals, not an escape
    ("caf%E9", "café"), ("CR%C8ME", "crème"), ("%E9t%E9", "été"), ("caf%E9s", "cafés"),  # Windows' escapes still read
])
def test_a_percent_sign_in_a_name_in_capitals_is_not_read_as_a_windows_escape(name, caption):
    assert caption_of(name) == caption
