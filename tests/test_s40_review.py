"""Review of session 40's diff: each test a defect the review found, failing without its fix."""

from __future__ import annotations

import subprocess
import sys
import tempfile

import pytest

LOOKER = """
import sys
from pathlib import Path
from t2i_cli.files import other_t2i_inferring
print(other_t2i_inferring(Path(sys.argv[1])), flush=True)
"""


@pytest.mark.parametrize("own", [{"T2I_OMP": "keep"}, {"OMP_WAIT_POLICY": "PASSIVE"}, {"GOMP_SPINCOUNT": "7"}])
def test_a_command_that_keeps_openmp_as_set_still_holds_the_inference_lock(tmp_path, monkeypatch, own):
    """An inference command run with T2I_OMP=keep (or OMP_WAIT_POLICY, GOMP_SPINCOUNT of the user's own) took no
    inference lock, since bound_spinning looked at nothing then: a second command started beside it did not know
    of it (README: each inference command holds the lock from its start)."""
    pytest.importorskip("fcntl")
    import os

    import t2i_cli.cli as cli
    from t2i_cli.files import _INFERENCE_HOLD

    for name in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "T2I_OMP"):
        monkeypatch.delenv(name, raising=False)
    for k, v in own.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delitem(sys.modules, "torch")  # as in a fresh command, where torch has not been imported yet
    monkeypatch.setattr(cli, "use_threads", lambda threads: None)  # (it imports torch)
    held = len(_INFERENCE_HOLD)
    try:
        cli.start_inference(None, "generate")
        later = subprocess.run([sys.executable, "-c", LOOKER, str(tmp_path)], capture_output=True, text=True,
                               timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        assert later.returncode == 0, later.stderr
        assert later.stdout.strip() == "1"  # the later start knows of this command
        assert os.environ.get("GOMP_SPINCOUNT") == own.get("GOMP_SPINCOUNT")  # and OpenMP is left as it was set
    finally:
        while len(_INFERENCE_HOLD) > held:
            os.close(_INFERENCE_HOLD.pop())


@pytest.mark.parametrize("name, caption", [("whatsapp", "whatsapp"), ("Snapchat", "snapchat"), ("fb", "fb"),
                                           ("whatsapp (2)", "whatsapp")])
def test_an_icon_named_for_a_messaging_app_keeps_its_caption(name, caption):
    """The messaging apps' names became tool words anywhere, so an icon set's whatsapp.png or snapchat.png (the
    README's `data caption my_icons/`) got no caption, where it was captioned by its name; the apps' own picture
    names still get none."""
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) == caption
    for app_named in ("WhatsApp Image 2024-01-02 at 10.11.12", "FB_IMG_1580000000000", "received_123456789012345",
                      "Snapchat-1234567890"):
        assert caption_of(app_named) is None


def test_a_manifest_path_in_another_unicode_form_is_found_below_a_folder_in_either_form(tmp_path):
    """A manifest's picture path whose name is decomposed (NFD) where the file is composed was found only where its
    folder took the same form: the whole path was normalized, so below a folder made on a Mac (NFD) the composed
    picture was a "missing image"."""
    import unicodedata

    from PIL import Image

    from t2i_cli import data

    folder = tmp_path / unicodedata.normalize("NFD", "Café")
    folder.mkdir()
    for i, name in enumerate(["thé", "crème"]):
        Image.new("RGB", (16, 16), (60 * i, 90, 200)).save(folder / (unicodedata.normalize("NFC", name) + ".png"))
    rows = "".join(f"{unicodedata.normalize('NFD', n)}.png,{c}\n" for n, c in (("thé", "a cup"), ("crème", "a cream")))
    (folder / "m.csv").write_text("file_name,text\n" + rows, encoding="utf-8")
    source = data.open_source(str(folder / "m.csv"), 16)
    assert len(source) == 2
    assert sorted(c for i in range(2) for c in source.captions_at(i)) == ["a cream", "a cup"]


def test_the_repeat_warning_says_a_line_in_another_unicode_form_repeats(tmp_path):
    """A line in decomposed form repeats its composed form since 3334871 (README), but the warning still said only
    "letter case and spacing aside": two lines that differ in neither were named as repeats, unexplained."""
    import unicodedata

    from t2i_cli.prompt_file import read_prompts

    f = tmp_path / "p.txt"
    f.write_text(f"café noir\n{unicodedata.normalize('NFD', 'café noir')}\n", encoding="utf-8")
    got = read_prompts(str(f))
    assert got.repeats == ((2, 1),)
    assert "an accent composed or not" in got.repeats_message()


def test_a_prompt_the_tokenizer_reads_as_a_pair_draws_regional_guidance_in_any_unicode_form(tmp_path):
    """The world's prompt parser read text composed (NFC) where the tokenizer reads it in NFKC: a prompt in
    full-width letters (a Japanese keyboard's) or with a ligature, which the model reads as "a red bird and a blue
    fish", was no pair, so it drew without regional guidance, and `--regional 2` was refused as moot for it."""
    from t2i_cli.prompt_file import as_read
    from t2i_cli.world.captions import parse_prompt, region_prompts

    plain = "a red bird and a blue fish"
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in plain)  # ａ ｒｅｄ ｂｉｒｄ ...
    for other in (wide, "a red bird and a blue \ufb01sh"):  # (U+FB01: the fi ligature)
        assert parse_prompt(other) == parse_prompt(plain) is not None
        assert region_prompts(other) == region_prompts(plain)
        assert as_read(other) == as_read(plain)  # one prompt to the model: a --prompts file draws it once


@pytest.mark.parametrize("text", ["\U0001fabf", "\U0003fffd"])  # a goose (Unicode 15), a code point unassigned yet
def test_a_caption_of_a_character_newer_than_pythons_unicode_tables_is_no_empty_caption(tmp_path, text):
    """1ae4b24 made a caption line of characters that draw nothing empty, with the test prompts use (blank), which
    counted a code point Python's tables do not know ("Cn") among them: a caption of an emoji newer than they are
    was skipped as an empty caption on Python 3.11 and trained on 3.12, and such a prompt was refused as blank."""
    from PIL import Image

    from t2i_cli import data
    from t2i_cli.prompt_file import blank

    assert not blank(text) and not blank(f"\u200b{text}") and blank("\u200b\u200e")
    Image.new("RGB", (16, 16), (200, 90, 30)).save(tmp_path / "goose.png")
    (tmp_path / "goose.txt").write_text(text + "\n", encoding="utf-8")
    Image.new("RGB", (16, 16), (30, 90, 200)).save(tmp_path / "bird.png")
    (tmp_path / "bird.txt").write_text("a bird\n", encoding="utf-8")
    source = data.open_source(str(tmp_path), 16)
    assert sorted(c for i in range(len(source)) for c in source.captions_at(i)) == sorted(["a bird", text])


def test_a_prompt_of_an_emoji_newer_than_pythons_unicode_tables_gets_a_name_of_its_own():
    """safe_stem hashes a prompt whose emoji have no ASCII form (README: "🐦" ends its name in a hash), but an emoji
    Python's tables do not know yet (a goose, Unicode 15, is "Cn" to Python 3.11) was left out unhashed: "a 🪿" was
    named "a", as the prompt "a" is, and "🪿" "image"."""
    from t2i_cli.files import safe_stem

    for new in ("\U0001fabf", "\U0003fffd"):  # a goose; a code point unassigned yet
        assert safe_stem(f"a {new}") != safe_stem("a") and safe_stem(f"a {new}").startswith("a-")
        assert safe_stem(new) != "image" and safe_stem(new) == safe_stem(f" {new} ")
    assert safe_stem("a \U0001fabf") != safe_stem("a \U0001f426")  # a goose is not a bird


def test_data_caption_says_what_to_try_for_nameless_pictures_beside_them_not_after_a_taken_name(tmp_path):
    """1e38efa put "try --from folder for those, or write their NAME.txt files yourself" at the end of the warning,
    after a taken caption name's "rename it, then run this again": it read as said of that name."""
    from PIL import Image

    from conftest import run

    pics = tmp_path / "pics"
    (pics / "blue-fish.txt").mkdir(parents=True)  # a caption name taken by a folder
    for name in ("IMG_2041", "red-bird", "blue-fish"):
        Image.new("RGB", (8, 8)).save(pics / f"{name}.png")
    r = run("data", "caption", pics, "--dry-run")
    assert r.exit_code == 0, r.stderr
    (line,) = r.stderr.strip().splitlines()
    nameless, taken = line.split("; 1 caption file name taken")
    # (not "try --from folder": "pics" is a tool's word, and --from folder would caption none of them)
    assert nameless.endswith("; write their NAME.txt files yourself")
    assert taken.endswith("rename it, then run this again")
    (pics / "red-bird.png").unlink()  # nothing left to write: the refusal says it in the same order
    r = run("data", "caption", pics, "--dry-run")
    assert r.exit_code == 1 and "e.g." in r.stderr
    assert r.stderr.strip().endswith("rename it, then run this again") and "; write the captions as" in r.stderr
