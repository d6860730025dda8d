"""Review of the afternoon's diff (cef4dcc..): defects found and fixed."""

import pytest

from t2i_cli.name_captions import caption_of


@pytest.mark.parametrize("name, caption", [("TicTacToe2", "tic tac toe"), ("iPad2Air4", "i pad 2 air"),
                                           ("NaNoWriMo2023", "na no wri mo"), ("HoHoHo2023", "ho ho ho")])
def test_words_of_two_or_three_letters_in_camel_case_are_no_random_id(name: str, caption: str):
    """The random-id rule (ShareX's "chrome_5gT8kLm2Qp") took any piece of short camel-case words with a digit for
    an id: "TicTacToe2", "iPad2Air4" had no caption at all; they keep their words, and ids are still dropped."""
    assert caption_of(name) == caption
    assert caption_of("chrome_5gT8kLm2Qp") == "chrome"
    assert caption_of("thumbnail_dQw4w9WgXcQ") == "thumbnail"
    assert caption_of("msedge_Xy7Qw2Lp9Z") == "msedge"
