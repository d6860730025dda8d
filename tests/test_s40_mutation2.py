"""Session 40, second mutation audit: of the day's new code (safe_stem's hash, shell_word, the name counter, the
sheets' label fonts, blank prompts, rerank's grouping, captions from names, the Unicode forms of data folders and
manifests, the CLI's new refusals). Each test kills a small change to that code that the earlier tests let pass:
what a user sees, pinned."""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from t2i_cli.files import safe_stem, shell_word

# --- safe_stem -------------------------------------------------------------------------------------------------

def test_prompts_that_differ_only_in_digits_of_another_script_get_two_names():
    """Arabic-Indic digits have no ASCII form: "a bird ٣" and "a bird ٤" are two prompts, two names (a digit
    carries meaning as a letter does)."""
    three, four = safe_stem("a bird \u0663"), safe_stem("a bird \u0664")
    assert three != four and three.startswith("a-bird-") and four.startswith("a-bird-")


def test_a_prompts_hash_is_of_its_words_as_the_model_reads_them():
    """A prompt in decomposed form (NFD), or in full-width letters, is the prompt the model reads: one name."""
    composed = safe_stem("café 红")
    assert safe_stem(unicodedata.normalize("NFD", "café 红")) == composed
    assert safe_stem("ｃａｆé 红") == composed
    assert safe_stem("CAFÉ 红") == composed


# --- shell_word -------------------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32" or not os.path.exists("/bin/bash"), reason="a POSIX shell's quoting")
def test_a_path_with_a_control_character_is_one_line_that_the_shell_reads_back():
    """A newline or a tab in a folder name is written as an escape in $'...' (a suggested command stays one line
    that, pasted, names that path)."""
    for path in ("/tmp/my\nrun", "/tmp/a\tb", "/tmp/it's\x1bhere"):
        word = shell_word(path)
        assert "\n" not in word and "\t" not in word and "\x1b" not in word and word.startswith("$'")
        echoed = subprocess.run(["bash", "-c", f"printf %s {word}"], capture_output=True).stdout
        assert echoed == path.encode()


# --- the inference lock -------------------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="no flock")
def test_a_second_inference_command_holds_the_lock_too_so_a_third_knows_of_it_after_the_first_ends(tmp_path,
                                                                                               monkeypatch):
    """Each start takes the lock exclusively to look, then holds it shared: the second of two commands holds it
    as the first does, so a third started after the first has ended still knows of the second."""
    from t2i_cli import files

    held: list[int] = []
    monkeypatch.setattr(files, "_INFERENCE_HOLD", held)
    try:
        assert files.other_t2i_inferring(tmp_path) == 0  # the first: alone
        assert files.other_t2i_inferring(tmp_path) == 1  # the second: the first runs
        assert len(held) == 2  # both hold it
        os.close(held.pop(0))  # the first ends
        assert files.other_t2i_inferring(tmp_path) == 1  # the third: the second still runs
    finally:
        for fd in held:
            os.close(fd)


# --- the sheets' label fonts ----------------------------------------------------------------------------------------

def _two_fonts(monkeypatch):
    """LABEL_FONTS as two installed fonts, the first without Hebrew (DejaVu Sans Mono), the second with it."""
    from t2i_cli import images

    mono, sans = images._system_font("DejaVuSansMono.ttf"), images._system_font("DejaVuSans.ttf")
    if mono is None or sans is None or bytes(mono.getmask("\u05d0")) != bytes(mono.getmask("\U0010fffd")) \
            or bytes(sans.getmask("\u05d0")) == bytes(sans.getmask("\U0010fffd")):
        pytest.skip("DejaVu Sans and DejaVu Sans Mono (without Hebrew) are not installed here")
    monkeypatch.setattr(images, "LABEL_FONTS", ("DejaVuSansMono.ttf", "DejaVuSans.ttf"))
    return images


def test_a_labels_font_is_the_first_that_has_every_letter_else_the_one_with_most(monkeypatch):
    images = _two_fonts(monkeypatch)
    assert Path(images.label_font("\u05d0\u05d1").path).name == "DejaVuSans.ttf"  # Hebrew: the second font has it
    assert Path(images.label_font("жж").path).name == "DejaVuSansMono.ttf"  # both have it: the first
    # Chinese, which neither has, and Hebrew: the font with the most of them, not none
    assert Path(images.label_font("红\u05d0").path).name == "DejaVuSans.ttf"


def test_a_labels_font_is_chosen_for_all_the_letters_its_two_lines_show(monkeypatch):
    """The letters of a label's second line count in the choice of its font, as the first line's do."""
    from PIL import Image

    images = _two_fonts(monkeypatch)
    asked: list[str] = []
    real = images.label_font
    monkeypatch.setattr(images, "label_font", lambda text: asked.append(text) or real(text))
    tile = Image.new("RGB", (64, 64), (255, 255, 255))
    images.contact_sheet([tile], ["a" * 70 + " \u05d0"], columns=1)
    assert asked and all("\u05d0" in text for text in asked)


# --- write_new where a folder has no hard links ----------------------------------------------------------------------

def test_write_new_without_hard_links_does_not_try_every_taken_name_again_for_each_file(tmp_path: Path,
                                                                                        monkeypatch):
    """Where os.link fails (FAT, some network shares) a name is reserved with O_EXCL instead (_claim): it too goes on
    from the last name it took, as write_new does with links, and fills no file made by someone else."""
    import errno
    import re

    from t2i_cli import files

    for i in range(300):
        (tmp_path / f"s-{i:03d}.png").write_bytes(b"mine")

    def no_link(a, b):
        raise OSError(errno.EPERM, "no hard links here")

    tries, real_open = [], os.open
    monkeypatch.setattr(os, "link", no_link)
    monkeypatch.setattr(os, "open", lambda p, *a, **k: (tries.append(p) if re.fullmatch(r"s-\d+\.png", Path(p).name)
                                                        else None) or real_open(p, *a, **k))
    got = [files.write_new(tmp_path, "s", ".png", lambda t: t.write_bytes(b"new")).name for _ in range(5)]
    assert got == [f"s-{i:03d}.png" for i in range(300, 305)]
    assert all((tmp_path / f"s-{i:03d}.png").read_bytes() == b"mine" for i in range(300))
    assert all((tmp_path / name).read_bytes() == b"new" for name in got)
    assert len(tries) == 305  # 301 for the first, 1 for each after (was 301 + 302 + ... + 305)


@pytest.fixture
def basic_layout(monkeypatch):
    """System fonts laid out by Pillow's basic engine, as where Pillow is built without libraqm: a combining mark
    is a glyph of its own there, not placed on its letter."""
    from PIL import ImageFont

    from t2i_cli import images

    real = ImageFont.truetype
    monkeypatch.setattr(images.ImageFont, "truetype",
                        lambda *a, **k: real(*a, **{**k, "layout_engine": ImageFont.Layout.BASIC}))
    images._system_font.cache_clear()
    images._has_glyph.cache_clear()
    yield images
    monkeypatch.undo()
    images._system_font.cache_clear()
    images._has_glyph.cache_clear()


def test_a_label_in_decomposed_form_is_drawn_as_its_composed_form_in_a_system_font(basic_layout):
    """A caption in decomposed form (NFD, as macOS writes file names) drawn in a system font looks as the
    composed caption does (its accents on their letters, not a letter then a mark of its own)."""
    from PIL import Image

    images = basic_layout
    if images.label_font("жé") is None:
        pytest.skip("none of images.LABEL_FONTS is installed here")
    tile = [Image.new("RGB", (64, 64), (200, 40, 40))]

    def label_pixels(label: str) -> bytes:
        return images.contact_sheet(tile, [label], columns=1, label_height=24).tobytes()

    composed = "жар café"
    assert label_pixels(unicodedata.normalize("NFD", composed)) == label_pixels(composed)
    assert label_pixels(composed) != label_pixels("жар cafe")  # its accent drawn



# --- captions from file names ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, caption", [
    ("bird 3D", "bird 3d"), ("4k sunset", "4k sunset"),  # a number's unit is no word of its own
    ("whatsapp 12345", None), ("fb 2024-01-02", None),  # an app's name beside a counter or a date: no words
    ("WhatsApp", "whatsapp"), ("fb", "fb"),  # an app's name alone: an icon's caption
    ("\U0001f60d", "smiling face with heart-shaped eyes"),  # an emoji's name keeps its hyphen
    (unicodedata.normalize("NFD", "café_noir"), "café noir"),  # a Mac's decomposed name: composed
])
def test_caption_of_units_app_names_and_emoji_names(name, caption):
    from t2i_cli.name_captions import caption_of

    got = caption_of(name)
    assert got == caption and (got is None or got == unicodedata.normalize("NFC", got))


# --- data: blank captions, Unicode forms ------------------------------------------------------------------------------

def _picture(path: Path, shade: int = 90) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade % 256, 90, 200)).save(path)
    return path


def _captions(source) -> list[list[str]]:
    return [list(source.captions_at(i)) for i in range(len(source))]


def test_a_caption_of_characters_that_draw_nothing_is_empty_in_every_kind_of_data(tmp_path):
    """A caption of a zero-width space and direction marks is no caption, in a caption file, a JSONL manifest (a
    caption or one of a list) and a CSV manifest alike: it was trained on as an unknown word."""
    from t2i_cli import data

    nothing = "\u200b\u200e"
    _picture(tmp_path / "a.png", 10)
    _picture(tmp_path / "b.png", 90)
    (tmp_path / "a.txt").write_text(f"{nothing}\na red bird\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text(f"{nothing}\n", encoding="utf-8")
    folder = data.open_source(str(tmp_path), 16)
    assert _captions(folder) == [["a red bird"]]

    (tmp_path / "m.jsonl").write_text(
        '{"image": "a.png", "caption": ["%s", "a red bird"]}\n{"image": "b.png", "caption": "%s"}\n'
        % (nothing, nothing), encoding="utf-8")
    assert _captions(data.open_source(str(tmp_path / "m.jsonl"), 16)) == [["a red bird"]]

    (tmp_path / "m.csv").write_text(f"file_name,text\na.png,a red bird\nb.png,{nothing}\n", encoding="utf-8")
    assert _captions(data.open_source(str(tmp_path / "m.csv"), 16)) == [["a red bird"]]


def test_a_caption_file_in_another_letter_case_and_unicode_form_is_its_pictures(tmp_path):
    """A Mac's "Café.png" (decomposed) beside a "café.txt" written elsewhere (composed, another letter case): one
    name to macOS' and Windows' file systems, its caption."""
    import unicodedata

    from t2i_cli import data

    _picture(tmp_path / unicodedata.normalize("NFD", "Café.png"))
    (tmp_path / unicodedata.normalize("NFC", "café.txt")).write_text("a cup of coffee", encoding="utf-8")
    pairs, _ = data._scan_folder(tmp_path)
    assert [captions for _, captions in pairs] == [["a cup of coffee"]]


def test_a_pictures_caption_in_its_own_unicode_form_comes_before_the_other(tmp_path):
    import unicodedata

    from t2i_cli import data

    for form, shade in (("NFC", 10), ("NFD", 200)):
        _picture(tmp_path / unicodedata.normalize(form, "thé.png"), shade)
        (tmp_path / unicodedata.normalize(form, "thé.txt")).write_text(f"{form} tea", encoding="utf-8")
    pairs, _ = data._scan_folder(tmp_path)
    got = {unicodedata.is_normalized("NFC", p.name): captions for p, captions in pairs}
    assert got == {True: ["NFC tea"], False: ["NFD tea"]}


def test_caption_beside_takes_the_pictures_own_unicode_form_first(tmp_path):
    """rerank reads a folder of pairs' captions with caption_beside: where both forms of a caption file are there,
    the picture's own is its caption."""
    import unicodedata

    from t2i_cli.data import caption_beside

    for form in ("NFC", "NFD"):
        (tmp_path / unicodedata.normalize(form, "thé.txt")).write_text(f"{form} tea", encoding="utf-8")
    for form in ("NFC", "NFD"):
        assert caption_beside(tmp_path / unicodedata.normalize(form, "thé.png"))[1] == f"{form} tea"


def test_a_manifest_naming_a_picture_composed_finds_it_decomposed(tmp_path):
    """A manifest written on Linux names "thé.png" composed where a Mac wrote the file decomposed: it is found."""
    import unicodedata

    from t2i_cli import data

    _picture(tmp_path / unicodedata.normalize("NFD", "thé.png"))
    (tmp_path / "m.csv").write_text(f"file_name,text\n{unicodedata.normalize('NFC', 'thé.png')},a cup\n",
                                    encoding="utf-8")
    assert _captions(data.open_source(str(tmp_path / "m.csv"), 16)) == [["a cup"]]


# --- the CLI's new checks -----------------------------------------------------------------------------------------

def test_explains_words_are_right_aligned_by_the_columns_a_terminal_gives_them():
    """--explain's words: a Chinese character takes two columns, a combining mark none."""
    from t2i_cli.cli import _right

    assert _right("红色", 6) == "  红色"
    assert _right("cafe\u0301", 6) == "  cafe\u0301"
    assert _right("bird", 6) == "  bird" and _right("a very long word", 6) == "a very long word"


@pytest.mark.parametrize("keep, stop, refused", [
    ([1, 1, 0, 0], 0.5, True),  # the stop at the first drawn code: guidance acts on none
    ([1, 1, 0, 0], 0.6, False),  # stop at code 3 (rounded up, as drawing stops): the code 2 is guided
    ([1, 0, 0, 0], 0.4, False),  # code 1 drawn, stop at code 2: guided
    ([1, 1, 1, 1], 0.5, False),  # an image prompt that draws nothing (keeps every code): nothing to say here
    ([0, 0, 0, 0], 0.1, False),
])
def test_guidance_stop_is_refused_exactly_where_it_reaches_no_drawn_code(keep, stop, refused):
    from types import SimpleNamespace

    import torch

    from t2i_cli.cli import _check_guidance_reaches
    from t2i_cli.errors import UsageError
    from t2i_cli.sampling import SamplingConfig

    image = SimpleNamespace(keep=torch.tensor(keep, dtype=torch.bool))
    sampling = SamplingConfig(guidance_stop=stop)
    if refused:
        with pytest.raises(UsageError, match="--guidance-stop"):
            _check_guidance_reaches(image, sampling)
    else:
        _check_guidance_reaches(image, sampling)


# --- weights under a name that is not UTF-8 -------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.isdir("/proc/self/fd") or sys.platform == "darwin",
                    reason="a file name of bytes that are not UTF-8 (Linux)")
def test_reading_weights_under_a_name_that_is_not_utf8_leaves_no_file_open(tmp_path):
    """t2i opens such a file itself for safetensors (which opens UTF-8 paths alone): the file is closed after, as
    safetensors closes its own (a long-lived process reading many checkpoints ran out of descriptors)."""
    import torch

    from t2i_cli import weights

    path = tmp_path / os.fsdecode(b"caf\xe9.safetensors")
    weights.save_tensors(path, {"w": torch.arange(6, dtype=torch.float32)}, {"kind": "test"})
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(3):
        tensors, metadata = weights.load_tensors(path)
        assert torch.equal(tensors["w"], torch.arange(6, dtype=torch.float32)) and metadata["kind"] == "test"
        assert weights.read_metadata(path)["kind"] == "test"
    assert set(os.listdir("/proc/self/fd")) - before == set()


# --- the tokenizer's unknown words ----------------------------------------------------------------------------------

def test_a_japanese_prompt_of_known_kana_pieces_has_no_unknown_word():
    """Hiragana and katakana are written without spaces, as Chinese is: a prompt of pieces the tokenizer learned is
    read, not warned about; a piece it never saw still is (and a spaced script's word split into pieces)."""
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.train(["あかいとり", "あおいさかな", "あかいさかな", "ネコ", "イヌ", "a red bird"] * 3,
                              vocab_size=200)
    for prompt, unknown in [("あおいとり", []), ("ネコイヌ", []), ("あかいぞう", ["あかいぞう"]),
                            ("a red fish", ["fish"])]:
        assert tok.encode(prompt, 12).unknown_words == unknown, prompt  # (あおいとり: あお + いと + り, learned)


# --- train --patience ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps, every, patience, said", [
    (6, 2, 3, True),  # 3 validations, the first a new best: 2 without one, never 3
    (10, 2, 3, False),  # 4 before its last step: it can stop at step 8
    (1500, 500, 2, True),  # 3, the last at step 1,500, where a stop saves nothing (was not said)
    (8, 2, 3, True), (2000, 500, 2, False),
    (300, 500, 2, True), (2, 2, 3, True), (10, 1, 10, True), (10, 1, 9, True), (11, 1, 9, False),
])
def test_patience_that_cannot_stop_a_run_is_said_and_its_advice_is_enough(steps, every, patience, said):
    """--patience P needs more than P validations before a run's last step to stop it early (a stop at its last
    step saves no step); what it says to give makes it act."""
    import dataclasses
    import re

    from t2i_cli.train import TrainConfig, patience_unused

    cfg = TrainConfig(stage="transformer", data="world", steps=steps, sample_every=every, patience=patience)
    note = patience_unused(cfg)
    assert (note is not None) == said
    if note and (advice := re.search(r"give sample_every at most ([\d,]+)", note)):  # (from Python: the field)
        assert patience_unused(dataclasses.replace(cfg, sample_every=int(advice.group(1).replace(",", "")))) is None
    elif note:
        assert f"a run of more than {patience + 1} steps can" in note
        assert patience_unused(dataclasses.replace(cfg, steps=patience + 2, sample_every=1)) is None


def test_a_label_whose_other_letters_are_not_shown_is_drawn_in_the_built_in_font():
    """The font is chosen for the letters a label's two lines show: where a letter the built-in font lacks comes
    after them (not drawn), the label is drawn as an ASCII one is, in the built-in font (it was drawn in a system
    font, so one sheet's labels were in two fonts for the same shown text)."""
    from conftest import label_pixels as band
    from t2i_cli import images

    if images.label_font("ж") is None:
        pytest.skip("none of images.LABEL_FONTS is installed here")

    def label_pixels(label: str) -> bytes:
        return band(label, 64, (255, 255, 255))

    shown = "red bird " + " ".join(c * 60 for c in "yxw")  # two lines and more of a 64-pixel tile
    assert label_pixels(shown + " ж") == label_pixels(shown + " z") == label_pixels(shown)
    assert label_pixels("red ж") != label_pixels("red z")  # a letter it shows: a system font's glyph
