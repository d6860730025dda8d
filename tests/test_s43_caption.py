"""Session 43: `t2i data caption`'s and the text's leftovers of session 42, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

from conftest import run
from t2i_cli.name_captions import caption_of
from test_s42_caption import _captions, _pictures


def test_numbers_of_names_that_do_not_count_are_no_counters_series(tmp_path: Path):
    """"windows_95", "windows_98", "windows_2000" in one folder were all captioned "windows": three names of one
    base made a counter's series whatever their numbers. A counter numbers pictures one after another: a series of
    numbers of two digits or more holds its start ("walk_1", "walk_10", "walk_11", "walk_13"; since session 44
    "beach-10" .. "beach-12" keep theirs, as "iphone 12" .. "iphone 14" do: series_captions), and one of one digit
    each is a counter as before ("bird_1" .. "bird_3", "walk_1" beside "walk_5"); a name
    alone keeps its number ("cat_12"), and so do names whose numbers are apart ("cat_12", "cat_40", "cat_95")."""
    pics = _pictures(tmp_path / "pics", "windows_95", "windows_98", "windows_2000", "bird_1", "bird_2", "bird_3",
                     "beach-10", "beach-11", "beach-12", "walk_1", "walk_10", "walk_11", "walk_13", "step_1",
                     "step_5",
                     "level-10", "level-20", "level-30", "frog_001", "frog_002", "frog_003")
    _pictures(tmp_path / "pics" / "alone", "cat_12")
    _pictures(tmp_path / "pics" / "apart", "cat_12", "cat_40", "cat_95")
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    assert _captions(pics) == {
        "windows_95": "windows 95", "windows_98": "windows 98", "windows_2000": "windows 2000",
        "bird_1": "bird", "bird_2": "bird", "bird_3": "bird", "beach-10": "beach 10", "beach-11": "beach 11",
        "beach-12": "beach 12", "walk_1": "walk", "walk_10": "walk", "walk_11": "walk", "walk_13": "walk",
        "step_1": "step", "step_5": "step", "level-10": "level 10", "level-20": "level 20", "level-30": "level 30",
        "frog_001": "frog", "frog_002": "frog", "frog_003": "frog"}
    assert _captions(pics / "alone") == {"cat_12": "cat 12"}
    assert _captions(pics / "apart") == {"cat_12": "cat 12", "cat_40": "cat 40", "cat_95": "cat 95"}



def test_an_icons_size_of_any_number_of_pixels_is_no_word_and_other_numbers_stay():
    """Sizes beyond the common ones after any word ("icon-192") were kept as words: "apple-touch-icon-180" was
    "apple touch icon 180", "icon-48px" "icon 48 px", "16×16 star" "16×16 star". A number of 16 to 1024 after
    an icon's word is its size; other numbers stay (one too small, one too big, one after another word)."""
    names = {"apple-touch-icon-180": "apple touch icon", "mstile-310": "mstile", "favicon-194": "favicon",
             "apple-touch-icon-152-precomposed": "apple touch icon precomposed", "icon-48px": "icon",
             "app_icon_36dp": "app icon", "16×16 star": "star",
             "icon-2": "icon 2", "logo-2000": "logo 2000", "lexicon-180": "lexicon 180", "route-180": "route 180"}
    assert {name: caption_of(name) for name in names} == names


def test_a_cut_escape_an_unnamed_code_point_and_a_zero_width_space_in_a_word_are_no_words():
    """A UTF-8 character's first bytes alone at the name's end after ASCII ("caf%C3", a name cut short) were read as
    Latin-1's "Ã": "caf ã"; "smile%F0%9F%98" was kept as typed. U+XXXX of a code point Unicode names no character
    was left as typed ("glyph_U+E000" -> "glyph u e"). A zero-width space between two letters split their word ("re"
    ZWSP "d" -> "re d"), as a zero-width joiner beside ASCII did. Latin-1's own words stay ("Fu%DF", "IRM%C3"), and
    a zero-width space still parts Thai words."""
    names = {"caf%C3": "caf", "caf%c3_noir": "caf noir", "smile%F0%9F%98": "smile", "caf%E2%82": "caf",
             "Fu%DF": "fuß", "IRM%C3": "irmã",
             "glyph_U+E000": "glyph", "glyph_U+0378": "glyph", "star_U+10FFFF": "star", "glyph_U+00E9": "glyph é",
             "re\u200bd bird": "red bird", "caf\u00e9\u200bnoir": "cafénoir", "re\u200dd": "red",
             "red\u200b bird": "red bird", "แมว\u200bสีแดง": "แมว สีแดง"}
    assert {name: caption_of(name) for name in names} == names


def test_caption_of_keeps_the_format_characters_the_tokenizer_keeps():
    """caption_of dropped format characters by its own rules beside the tokenizer's (without_format): Arabic's
    number sign U+0600, which the tokenizer keeps (it is drawn around the digits after it), was dropped; a tag
    character outside a flag was a space ("a" TAG "b" -> "a b"; None). Both read now as the tokenizer reads them;
    a subdivision flag's tags, the joiners of an emoji sequence and a Persian word's non-joiner as before."""
    names = {"\u0600\u0661\u0662 cats": "\u0600\u0661\u0662 cats", "re\U000e0067d": "red",
             "\U0001f468\u200d\U0001f469\u200d\U0001f467": "man woman girl", "so\u00adft toy": "soft toy",
             "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"}
    assert {name: caption_of(name) for name in names} == names


def test_an_emoji_sequences_joiner_is_no_unknown_word():
    """The whitespace pre-tokenizer reads a zero-width joiner (and an emoji's variation selector) as a letter: an
    emoji ZWJ sequence's joiners were words of their own, listed among a prompt's unknown words ("\\u200d" beside
    "👨") and counted among a caption's words (and unknown ones) by the tokenizer stage's check."""
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.train(["a red bird", "a blue fish"] * 4, vocab_size=64)
    family, rainbow = "\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f3f3\ufe0f\u200d\U0001f308"
    # (since session 44 a sequence is one word, its members not three: tests/test_s44_hD.py)
    assert tok.encode(f"a red bird {family}", 16).unknown_words == [family]
    assert tok.unread_words(f"a red bird {family}") == ([family], 4)
    assert tok.unread_words(f"a {rainbow} fish") == ([rainbow], 3)


def test_an_emoji_sequence_is_one_word_of_a_prompt_not_its_joiners_too():
    """TextTokenizer.words (rerank --explain's panels, a word each) read "👨" ZWJ "👩" ZWJ "👧" as five words, two
    of them the invisible joiner: the sequence is one word, its tokens' positions together."""
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.train(["a red bird", "a blue fish"] * 4, vocab_size=64)
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert tok.words(f"a red {family} bird", 16) == [("a", [0]), ("red", [1]), (family, [2, 3, 4, 5, 6]),
                                                      ("bird", [7])]


def test_gnomes_and_google_drives_copies_and_gnomes_screenshot_are_named_as_such():
    """GNOME Files names a copy "bird (copy)", "bird (another copy)", "bird (3rd copy)", Google Drive (and Windows
    XP) "Copy of bird": each was captioned with its "copy" ("bird copy", "copy of bird"); GNOME's screenshot,
    "Screenshot from 2024-05-01 10-31-02", was captioned "screenshot from". A name's own "copy" or "from" stays."""
    names = {"red bird (copy)": "red bird", "red bird (another copy)": "red bird", "red bird (3rd copy)": "red bird",
             "Copy of red bird": "red bird", "Copy (2) of route 66": "route 66",
             "Screenshot from 2024-05-01 10-31-02": None,
             "edit-copy": "edit copy", "a letter from home": "a letter from home"}
    assert {name: caption_of(name) for name in names} == names


def test_an_emoji_sets_flags_and_keycaps_are_read_whole():
    """A flag (two regional indicator letters) was captioned with each letter's name, "regional indicator symbol
    letter u regional indicator symbol letter s"; a keycap emoji ("#", "*" or a digit, then U+20E3) lost its base
    (no symbol's code point: "0023-fe0f-20e3" was "combining enclosing keycap", "emoji_u0031_20e3" "emoji u ...")."""
    names = {"1f1fa-1f1f8": "flag us", "emoji_u1f1ec_1f1e7": "emoji flag gb", "\U0001f1fa\U0001f1f8": "flag us",
             "0023-fe0f-20e3": "keycap number sign", "emoji_u0031_20e3": "emoji keycap digit one",
             "1\ufe0f\u20e3": "keycap digit one",
             "1f600": "grinning face", "1f1fa": "regional indicator symbol letter u"}
    assert {name: caption_of(name) for name in names} == names


def test_a_fonts_glyph_names_and_stock_photo_sites_names_are_read_as_such():
    """A font's glyph name "uni00E9" was captioned "uni 00e" and "uni2605" "uni"; a stock photo site's names,
    "AdobeStock_123456789", "iStock-123456789", "pexels-photo-1234567", "adobe stock", "i stock", "pexels photo",
    and Lightroom's "IMG_1234-Enhanced-NR" "img 1234 enhanced nr". A brand icon "unsplash" keeps its caption."""
    names = {"uni00E9": "é", "glyph_uni2605": "glyph black star", "uniface": "uniface",
             "AdobeStock_123456789": None, "shutterstock_123456789": None, "iStock-123456789": None,
             "GettyImages-123456789": None, "pexels-photo-1234567": None, "IMG_1234-Enhanced-NR": None,
             "unsplash": "unsplash", "enhanced": "enhanced", "edit-copy": "edit copy"}
    assert {name: caption_of(name) for name in names} == names


def test_screenshots_in_other_languages_and_signals_and_telegrams_names_get_no_caption():
    """macOS' and GNOME's screenshots in other languages than English were captioned with the words around the date
    ("bildschirmfoto um", "capture d’écran à", "スクリーンショット"), Signal's saved picture "signal", Telegram's
    "telegram cloud photo size 2 y"; the English screenshot gets none, and neither do these. The app's name alone
    (an icon) and a name with a word of what it shows keep their captions."""
    names = {"Bildschirmfoto 2024-05-01 um 10.31.02": None, "Capture d’écran 2024-05-01 à 10.31.02": None,
             "Captura de pantalla 2024-05-01 a las 10.31.02": None, "スクリーンショット 2024-05-01 10.31.02": None,
             "截屏2024-05-01 10.31.02": None, "Bildschirmfoto vom 2024-05-01 10-31-02": None,
             "signal-2024-05-01-103102": None, "telegram-cloud-photo-size-2-5361234567890123456-y": None,
             "signal": "signal", "telegram": "telegram", "red bird 2024-05-01": "red bird"}
    assert {name: caption_of(name) for name in names} == names


def test_a_pictures_extension_in_its_name_and_a_saved_thumbnails_name_are_no_words():
    """A picture's extension left in its name ("red bird.jpg.png", a converted download, and its copies) was a word
    of its caption ("red bird jpg"); a YouTube thumbnail or a Bing result saved as the browser names it,
    "maxresdefault", "hqdefault (1)", "OIP", was its caption."""
    names = {"red bird.jpg": "red bird", "bird.png.webp": "bird", "bird.jpg (1)": "bird", "bird.jpg copy": "bird",
             "maxresdefault": None, "hqdefault (1)": None, "OIP": None, "OIP-C": None,
             "jpg": "jpg", "png-file": "png file", "route 66.jpg (1)": "route 66"}
    assert {name: caption_of(name) for name in names} == names


def test_untitled_and_picture_in_other_languages_get_no_caption_and_a_number_after_no_is_kept(tmp_path: Path):
    """A tool's "untitled" or "picture" in other languages than English ("Unbenannt-1", "Sans titre 2", "Foto 12",
    "画像 1") and Canva's "Untitled design (1)" were captions where "Untitled-1", "Picture 12" got none. A number
    after "No." was taken for a counter, its "no" left dangling ("Symphony No. 5" -> "symphony no"), and a folder's
    "Symphony No. 5" .. "No. 7" were all "symphony no"."""
    names = {"Unbenannt-1": None, "Sans titre 2": None, "Ohne Titel": None, "Foto 12": None, "画像 1": None,
             "Untitled design (1)": None, "Symphony No. 5": "symphony no 5", "bird No3": "bird no 3",
             "foto de un pájaro rojo": "foto de un pájaro rojo", "design": "design"}
    assert {name: caption_of(name) for name in names} == names
    pics = _pictures(tmp_path / "pics", "Symphony No. 5", "Symphony No. 6", "Symphony No. 7", "bird_1", "bird_2")
    assert run("data", "caption", pics, "-q").exit_code == 0
    assert _captions(pics) == {"Symphony No. 5": "symphony no 5", "Symphony No. 6": "symphony no 6",
                               "Symphony No. 7": "symphony no 7", "bird_1": "bird", "bird_2": "bird"}


def test_a_counter_of_a_whole_and_ios_small_icons_size_are_no_words():
    """"bird (3 of 10)" was captioned "bird 3 of" (its last number taken off as a counter), "Page 3 of 10" "page 3
    of 10"; iOS' "Icon-Small-40" "icon small 40". Words around "of" stay ("seven of nine", "4 of july")."""
    names = {"bird (3 of 10)": "bird", "Page 3 of 10": "page", "bird_3_of_10": "bird", "Icon-Small-40": "icon small",
             "seven of nine": "seven of nine", "4 of july": "4 of july", "icon-small": "icon small"}
    assert {name: caption_of(name) for name in names} == names


def test_wechats_names_get_no_caption():
    """WeChat's saved pictures, "mmexport1690000000000", "wx_camera_1690000000000", "微信图片_20240501103102", were
    captioned "mmexport", "wx camera", "微信图片", where WhatsApp's get none. The app's name alone (an icon) stays."""
    names = {"mmexport1690000000000": None, "wx_camera_1690000000000": None, "微信图片_20240501103102": None,
             "Weixin Image_20240501103102": None, "wechat": "wechat"}
    assert {name: caption_of(name) for name in names} == names
