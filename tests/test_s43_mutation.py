"""Mutation audit (s43, helper hE): tests that kill mutants which survived the suite in sampling_config.py,
prompt_file.py, models/tokenizer.py, name_captions.py, files.py and data.py's imagefolder/manifest reading."""

from __future__ import annotations

import pytest

from t2i_cli.errors import UsageError
from t2i_cli.sampling_config import SamplingConfig


def test_a_guidance_start_over_100_is_refused_as_guidance_is():
    """--guidance-start's range is 0..100, as --guidance's: 100 is taken, 100.5 and 1e40 are refused (a float32
    overflow otherwise), each naming the option and its range."""
    assert SamplingConfig(guidance_start=100.0).guidance_start == 100.0
    for bad in (100.5, 1e40):
        with pytest.raises(UsageError, match=r"^guidance_start must be between 0 and 100, got "):
            SamplingConfig(guidance_start=bad)


def test_guidance_stop_is_refused_beside_the_smallest_jacobi_window():
    """--jacobi 1 is speculative decoding all the same (cfg.jacobi truthy: _jacobi_codes), which guidance_stop does
    not combine with: refused at 1 as at 4, and taken beside --jacobi 0."""
    assert SamplingConfig(guidance_stop=0.5, jacobi=0).guidance_stop == 0.5
    for window in (1, 4):
        with pytest.raises(UsageError, match=r"^guidance_stop does not combine with jacobi"):
            SamplingConfig(guidance_stop=0.5, jacobi=window)


def test_regional_is_checked_for_type_and_held_as_a_float_as_the_other_weights_are():
    """regional is a number like guidance: "2" (a str from a JSON file) is one UsageError naming it, not a TypeError
    from the range check; an int 2 is held as 2.0 (every float field is a plain float: a run's recorded settings)."""
    with pytest.raises(UsageError, match=r"^regional must be a number, got '2'"):
        SamplingConfig(regional="2")
    with pytest.raises(UsageError, match=r"^regional must be a number, got True"):
        SamplingConfig(regional=True)
    cfg = SamplingConfig(regional=2, guidance=3, temperature=1)
    assert type(cfg.regional) is float and type(cfg.guidance) is float and type(cfg.temperature) is float

def test_a_number_0_at_a_names_end_is_a_counter_not_part_of_the_name():
    """A named number has no leading zero (_NAME_NUMBER: 1 to 4 digits from 1): "bird 0", "bird_0" (a counter that
    starts at 0) are "bird", as "bird 01"; "route 66" keeps its number."""
    from t2i_cli.name_captions import caption_of

    assert [caption_of(n) for n in ("bird 0", "bird_0", "bird-0", "bird 01")] == ["bird"] * 4
    assert caption_of("route 66") == "route 66"


def test_guidance_stops_after_its_exact_share_of_the_codes_despite_float_rounding():
    """0.07 * 100 is 7.000000000000001 in floating point: guidance stops at code 7 of 100 (the 7% share), not 8; and
    at 7 of 200 for 0.035, 4 of 16 for 0.25, 2 of 3 for 0.5, n for 1 and without a stop."""
    assert SamplingConfig(guidance_stop=0.07).guidance_stops_at(100) == 7
    assert SamplingConfig(guidance_stop=0.035).guidance_stops_at(200) == 7
    assert SamplingConfig(guidance_stop=0.25).guidance_stops_at(16) == 4
    assert SamplingConfig(guidance_stop=0.5).guidance_stops_at(3) == 2  # (1.5 codes: the second is still guided)
    assert SamplingConfig(guidance_stop=1.0).guidance_stops_at(7) == 7
    assert SamplingConfig().guidance_stops_at(7) == 7


def test_each_icon_size_after_an_underscore_or_hyphen_is_no_part_of_the_name():
    """An icon's size in pixels after _ or - (16 .. 1024) is taken off, each of them; another number there ("-513")
    and a number after a space ("bird 512", as "route 66") stay."""
    from t2i_cli.name_captions import caption_of

    for size in (16, 32, 48, 64, 96, 128, 192, 256, 512, 1024):
        assert caption_of(f"bird_{size}") == "bird", size
        assert caption_of(f"bird-{size}") == "bird", size
    assert caption_of("bird-513") == "bird 513"
    assert caption_of("bird 512") == "bird 512"  # (after icon, favicon, logo ... any 16..1024 is a size: "logo 512")


@pytest.mark.parametrize("name, caption", [
    ("route 66 (1234)", "route 66"),  # a download's copy counter of 4 digits after a named number (_DUPLICATE)
    ("apollo 11 23", "apollo"),  # only a copy's counter of ONE digit after a named number is taken off first
    ("dsc 12345 sunset", "dsc sunset"),  # a number of 5 digits is a counter wherever it is
    ("0 degrees", "0 degrees"),  # "0" alone has no leading zero: a count, kept
    ("whatsapp 1234", "whatsapp 1234"),  # an app's name beside a 4-digit number is a name (5 digits: a tool's)
    ("caf%C3%A9%C1", "café á"),  # C1 is no UTF-8 lead byte: the run's last byte is Latin-1's Á, kept
    ("x%C3%A9%E0", "xéà"),  # a lone E0 after UTF-8 text is Latin-1's à, not a cut-short sequence
    ("1%C3%A9%E9", "1 éé"),  # "after a digit" (a percentage) is said of the run's first byte only
    ("caf%E9a", "caféa"),  # a hex letter after the run of the other case does not make it a percent sign
    ("caf%e9A", "café a"),
    ("%FE%FFcat", "cat"),  # UTF-16's byte-order marks, either order, are no text
    ("%FF%FEcat", "cat"),
    ("a%FF%FE%FE%FFb", "ab"),
    ("caf%e9bird", "caf%e9bird"),  # an escape left as typed (a hex letter of its case after it) is not parted
    ("CAF%E9Bird", "caf%e9bird"),
    ("red\u200cbird", "redbird"),  # a non-joiner between ASCII letters means nothing: dropped
    ("a\u200cb", "ab"),
    ("30%deal", "30%deal"),  # a percentage before a word: no byte
    ("xy%C3", "xy"),  # a lone lead byte after ASCII is a UTF-8 character cut short, dropped
    ("caf%E9%41B", "café ab"),  # only the run's last part is followed by what comes after the run
    ("caf%e9%E9", "caf%e9%e9"),  # escapes typed in both cases are left as typed
])
def test_caption_of_number_and_escape_rules(name, caption):
    from t2i_cli.name_captions import caption_of

    assert caption_of(name) == caption


# --- models/tokenizer.py: without_format, joins, check_processing

def test_without_format_keeps_a_joiner_only_between_two_drawn_characters_beyond_ascii():
    """A joiner at either end of the text, beside ASCII or beside another format character means nothing: dropped
    (at the start, text[-1] is no neighbour); between two emoji it stays; a zero-width space is a space."""
    from t2i_cli.models.tokenizer import without_format

    bird, zwj = "\U0001f426", "\u200d"
    assert without_format(zwj + bird) == bird
    assert without_format(bird + zwj) == bird
    assert without_format(bird + zwj + "a") == bird + "a"
    assert without_format("a" + zwj + "b") == "ab"
    assert without_format(bird + zwj + "\u200e" + bird) == bird + bird
    assert without_format(bird + zwj + bird) == bird + zwj + bird
    assert without_format("red\u200bbird") == "red bird"


def test_without_format_keeps_a_subdivision_flag_and_the_marks_drawn_around_digits():
    """Scotland's flag (the black flag, tags g b s c t and the cancel tag U+E007F) stays whole; tags after anything
    else, or after the flag with a letter between, are dropped; Arabic's number sign and end of ayah stay."""
    from t2i_cli.models.tokenizer import without_format

    tags = "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"
    scotland = "\U0001f3f4" + tags
    assert without_format(scotland) == scotland
    assert without_format("a bird " + scotland) == "a bird " + scotland
    assert without_format("x" + tags + " bird") == "x bird"
    assert without_format("\U0001f3f4x" + tags) == "\U0001f3f4x"
    assert without_format("\u0600\u0661\u0662") == "\u0600\u0661\u0662"
    assert without_format("\u06dd\u0661") == "\u06dd\u0661"


def _tokenizer_spec():
    import json

    from t2i_cli.models.tokenizer import TextTokenizer

    return json.loads(TextTokenizer.train(["a red bird", "a blue fish"], vocab_size=64).to_json())


def test_check_processing_refuses_each_step_t2i_does_not_train_and_takes_a_whitespace_only_file():
    """A tokenizer file is refused (ValueError) for dropout, another model, a normaliser without lower case, a
    decoder, a non-object model, the ideograph split anywhere but the pre-tokenizer and nesting too deep; a file of
    an earlier t2i (the whitespace pre-tokenizer alone) and t2i's own are taken."""
    import copy
    import json

    from t2i_cli.models.tokenizer import IDEOGRAPH_SPLIT, check_processing

    spec = _tokenizer_spec()
    check_processing(json.dumps(spec))
    old = copy.deepcopy(spec)
    old["pre_tokenizer"] = {"type": "Whitespace"}
    check_processing(json.dumps(old))

    def refused(change, match):
        bad = copy.deepcopy(spec)
        change(bad)
        with pytest.raises(ValueError, match=match):
            check_processing(json.dumps(bad))

    refused(lambda s: s["model"].__setitem__("dropout", 0.1), "dropout")
    refused(lambda s: s["model"].__setitem__("type", "WordPiece"), "'WordPiece'")
    refused(lambda s: s.__setitem__("normalizer", {"type": "Sequence", "normalizers": [{"type": "NFKC"}]}),
            "its normalizer is not")
    refused(lambda s: s.__setitem__("normalizer", IDEOGRAPH_SPLIT), "its normalizer is not")
    refused(lambda s: s.__setitem__("decoder", {"type": "BPEDecoder", "suffix": "</w>"}), "its decoder is not")
    refused(lambda s: s.__setitem__("model", "BPE"), "not a JSON object with a model")
    with pytest.raises(ValueError, match="nested too deeply"):
        check_processing("[" * 100_000 + "]" * 100_000)


# --- prompt_file.py

def test_a_prompt_file_of_exactly_its_bound_is_read(tmp_path, monkeypatch):
    """MAX_PROMPT_FILE bytes are read; one byte more is refused (the bound is inclusive)."""
    from t2i_cli import prompt_file
    from t2i_cli.errors import DataError

    monkeypatch.setattr(prompt_file, "MAX_PROMPT_FILE", 64)
    body = "a red bird\n#"
    f = tmp_path / "p.txt"
    f.write_text(body + "x" * (64 - len(body)))
    assert [p.prompt for p in prompt_file.read_prompts(str(f)).prompts] == ["a red bird"]
    f.write_text(body + "x" * (65 - len(body)))
    with pytest.raises(DataError, match="is over"):
        prompt_file.read_prompts(str(f))


def test_a_line_of_only_a_variation_selector_is_blank(tmp_path):
    """U+FE0F (and U+FE0E) draw nothing: a line of them is skipped as blank (an emoji with one is no blank)."""
    from t2i_cli.prompt_file import blank, read_prompts

    assert blank("\ufe0f") and blank("\ufe0e \ufe0f") and not blank("\ufe0f\U0001f426")
    f = tmp_path / "p.txt"
    f.write_text("\ufe0f\na red bird\n", encoding="utf-8")
    assert [(p.line, p.prompt) for p in read_prompts(str(f)).prompts] == [(2, "a red bird")]


def test_check_negative_refuses_a_guidance_below_1_named_by_its_setting_only_when_asked():
    """Asked for now (the command line), a schedule starting below 1 is refused naming guidance_start; a start of
    exactly 1 is taken; guidance 1 (no guidance) is refused for any negative; a PNG's recorded setting (not asked)
    below 1 still redraws."""
    from t2i_cli.prompt_file import check_negative

    check_negative("a blue bird", SamplingConfig(guidance=3.0, guidance_start=1.0), asked=True)
    with pytest.raises(UsageError, match=r"^guidance_start=0\.5 is below 1"):
        check_negative("a blue bird", SamplingConfig(guidance=3.0, guidance_start=0.5), asked=True)
    with pytest.raises(UsageError, match=r"^guidance=0\.5 is below 1"):
        check_negative("a blue bird", SamplingConfig(guidance=0.5), asked=True)
    check_negative("a blue bird", SamplingConfig(guidance=0.5), asked=False)
    with pytest.raises(UsageError, match=r"^negative works through guidance"):
        check_negative("a blue bird", SamplingConfig(guidance=1.0))
    with pytest.raises(UsageError, match=r"^negative is empty"):
        check_negative("\u200b\ufe0f", SamplingConfig())


def test_a_prompt_file_named_dash_is_a_file_and_a_terminal_is_refused(tmp_path, monkeypatch):
    """'./-' is the file named '-' (a str as typed), '-' standard input: a terminal there is refused."""
    from t2i_cli.errors import DataError
    from t2i_cli.prompt_file import read_prompts

    (tmp_path / "-").write_text("a red bird\n")
    monkeypatch.chdir(tmp_path)
    assert [p.prompt for p in read_prompts("./-").prompts] == ["a red bird"]

    class Terminal:
        closed = False

        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    with pytest.raises(DataError, match="which is a terminal"):
        read_prompts("-")


# --- files.py: broken_link, check_folder_path, check_output_file

def test_check_folder_path_names_a_link_to_nothing_a_file_and_a_pipe(tmp_path):
    """A folder path that is a link to nothing, or inside one, is refused naming the link and its target (a relative
    target as the link's folder's); one inside a file or that is a pipe is refused; one inside a link to a folder is
    taken."""
    import os

    from t2i_cli.files import check_folder_path

    (tmp_path / "dead").symlink_to("missing")
    (tmp_path / "real").mkdir()
    (tmp_path / "good").symlink_to("real")
    (tmp_path / "f").write_text("x")
    os.mkfifo(tmp_path / "pipe")
    target = tmp_path / "missing"
    with pytest.raises(UsageError) as e:
        check_folder_path(tmp_path / "dead", "--out")
    assert str(e.value) == (f"--out {tmp_path / 'dead'} is a link to {target}, which does not exist (or links back "
                            f"to itself); make that folder, or choose another with --out")
    with pytest.raises(UsageError) as e:
        check_folder_path(tmp_path / "dead" / "sub", "--out")
    assert str(e.value).startswith(f"--out {tmp_path / 'dead' / 'sub'} is inside {tmp_path / 'dead'}, a link to "
                                   f"{target}, which does not exist")
    with pytest.raises(UsageError, match="which is a file"):
        check_folder_path(tmp_path / "f" / "sub", "--out")
    with pytest.raises(UsageError, match="exists and is not a folder"):
        check_folder_path(tmp_path / "pipe", "--out")
    with pytest.raises(UsageError, match=r"pipe, which is a file; choose another with --out$"):
        check_folder_path(tmp_path / "pipe" / "sub", "--out")  # (a pipe above is no folder either)
    assert check_folder_path(tmp_path / "good" / "sub", "--out") == tmp_path / "good" / "sub"


def test_check_output_file_says_why_its_folder_is_none(tmp_path, monkeypatch):
    """An output file's folder that is a file, inside a file, a link to nothing or missing is each refused in its own
    words; a folder that cannot be written to is refused (os.access says so: root writes anywhere)."""
    from t2i_cli import files

    (tmp_path / "f").write_text("x")
    (tmp_path / "dead").symlink_to("missing")

    def said(path):
        with pytest.raises(UsageError) as e:
            files.check_output_file(path, "--json")
        return str(e.value)

    assert said(tmp_path) == f"--json {tmp_path} is a folder; give a file name, e.g. {tmp_path / 'results.json'}"
    assert said(tmp_path / "f" / "r.json") == (f"--json {tmp_path / 'f' / 'r.json'}: {tmp_path / 'f'} is a file, not a "
                                               f"folder; choose another path")
    assert said(tmp_path / "f" / "a" / "r.json").endswith(f"is inside {tmp_path / 'f'}, which is a file; choose "
                                                          f"another path")
    assert said(tmp_path / "dead" / "r.json") == (
        f"--json {tmp_path / 'dead' / 'r.json'}: {tmp_path / 'dead'} is a link to {tmp_path / 'missing'}, which does "
        f"not exist (or links back to itself); make that folder, or choose another path")
    assert said(tmp_path / "new" / "r.json").endswith(f"{tmp_path / 'new'} is not a folder; create it or choose "
                                                      f"another path")
    assert files.check_output_file(tmp_path / "r.json", "--json") == tmp_path / "r.json"
    monkeypatch.setattr(files.os, "access", lambda path, mode: False)
    assert said(tmp_path / "r.json").endswith(f"{tmp_path} cannot be written to; choose another path")


# --- data.py: the imagefolder manifests' columns, the manifest above, letter case

def _squares(folder, *names):
    from PIL import Image

    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i, 90, 200 - 30 * i)).save(folder / name)
    return folder


def test_a_manifest_line_with_both_pairs_is_read_by_image_and_caption_first(tmp_path):
    """MANIFEST_KEYS' order: a line holding "image"/"caption" and "file_name"/"text" is read by the first pair."""
    import json

    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "a.png", "b.png")
    (ds / "m.jsonl").write_text(json.dumps({"image": "a.png", "caption": "a red square", "file_name": "b.png",
                                            "text": "a blue square"}) + "\n")
    got = data.open_source(str(ds / "m.jsonl"), 16)
    assert len(got) == 1 and got.captions_at(0) == ["a red square"] and got.file_of(0).endswith("a.png")


@pytest.mark.parametrize("header, note", [
    ("image,text", 'is not read: its picture column "image" pairs with "caption" only'),
    ("filename,text", 'has no picture column t2i reads ("file_name" or "image"), so it is not read'),
    ("FILE_NAME,DESCRIPTION", "has no caption column t2i reads, so it is not read"),
])
def test_a_metadata_csv_whose_columns_are_not_read_is_named_for_what_it_lacks(tmp_path, header, note):
    """A metadata.csv beside pictures without a caption whose columns t2i does not read is named with the note of
    what it lacks, its columns compared in any letter case."""
    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "red_bird.txt").write_text("a red bird\n")
    (ds / "metadata.csv").write_text(f"{header}\nblue_fish.png,a blue fish\n")
    said = data.open_source(str(ds), 16).skipped_message()
    assert f"{ds / 'metadata.csv'} (its columns: " in said and note in said, said


def test_a_row_naming_a_folder_in_other_letter_case_is_a_missing_image_not_a_miscased_one(tmp_path):
    """Only a FILE differing in letter case alone is said as such: a row naming "PHOTOS" beside the folder photos/ is
    a missing image."""
    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "photos/a.png", "b.png")
    (ds / "m.csv").write_text("file_name,text\nPHOTOS,a folder\nb.png,a blue square\n")
    got = data.open_source(str(ds / "m.csv"), 16)
    assert got.skipped == {"missing image": 1}


def test_the_manifest_above_counts_only_rows_with_a_caption_and_survives_short_rows(tmp_path):
    """ds/metadata.csv above ds/train: a short row and an empty caption are not counted (nor a crash), a name with
    spaces around it is (as the reader strips it); a jsonl row of a blank caption is not counted."""
    import json

    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "train/a.png", "train/b.png", "train/c.png")
    (ds / "metadata.csv").write_text("file_name,text\ntrain/a.png\ntrain/b.png,\n train/c.png ,a cat\n")
    assert data.plan_captions(ds / "train").above.startswith(f"{ds / 'metadata.csv'} names 1 of the pictures here")
    (ds / "metadata.csv").unlink()
    (ds / "metadata.jsonl").write_text(json.dumps({"file_name": "train/a.png", "text": " "}) + "\n"
                                       + json.dumps({"file_name": "train/b.png", "text": "a bee"}) + "\n")
    assert data.plan_captions(ds / "train").above.startswith(f"{ds / 'metadata.jsonl'} names 1 of the pictures here")


def test_a_metadata_jsonl_of_upper_case_names_without_a_caption_is_named(tmp_path):
    """{"FILE_NAME", "LABEL"}: its names are compared in lower case, so it is a manifest without a caption column."""
    import json

    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "red_bird.png", "blue_fish.png")
    (ds / "red_bird.txt").write_text("a red bird\n")
    (ds / "metadata.jsonl").write_text(json.dumps({"FILE_NAME": "blue_fish.png", "LABEL": 3}) + "\n")
    said = data.open_source(str(ds), 16).skipped_message()
    assert f"{ds / 'metadata.jsonl'} (its columns: 'FILE_NAME', 'LABEL') has no caption column t2i reads" in said


def test_a_manifest_above_naming_none_of_the_pictures_says_nothing(tmp_path):
    """ds/metadata.csv whose rows name other pictures than train's uncaptioned ones: no hint (it named "0")."""
    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "train/a.png", "val/b.png")
    (ds / "metadata.csv").write_text("file_name,text\nval/b.png,a bee\n")
    assert data.plan_captions(ds / "train").above == ""


def test_a_picture_with_too_many_captions_is_used_not_counted_as_skipped(tmp_path):
    """Captions past MAX_CAPTIONS are trimmed: the picture is used and said apart, not "skipped 1 item"."""
    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "a.png")
    (ds / "a.txt").write_text("".join(f"a red square {i}\n" for i in range(data.MAX_CAPTIONS + 1)))
    got = data.open_source(str(ds), 16)
    said = got.skipped_message()
    assert len(got) == 1 and not said.startswith("skipped"), said
    assert said.startswith(f"using 1; 1 picture has over {data.MAX_CAPTIONS} captions"), said


def test_the_manifest_above_is_looked_for_two_folders_up_and_read_to_its_bound(tmp_path, monkeypatch):
    """ds/metadata.csv naming train/x/a.png is found for ds/train/x (ABOVE_LEVELS, two folders up); read no further
    than MAX_ABOVE bytes, its count is said as "N or more" when rows follow."""
    from t2i_cli import data

    ds = _squares(tmp_path / "ds", "train/x/a.png", "train/x/b.png")
    rows = "".join(f"train/x/{n}.png,a square\n" for n in ("a", "b")) + "other.png,a filler row\n" * 2000
    (ds / "metadata.csv").write_text("file_name,text\n" + rows)
    plan = data.plan_captions(ds / "train" / "x")
    assert plan.above.startswith(f"{ds / 'metadata.csv'} names 2 of the pictures here without a caption: give "), \
        plan.above
    monkeypatch.setattr(data, "MAX_ABOVE", 40)
    assert " or more of the pictures here without a caption" in data.plan_captions(ds / "train" / "x").above


def test_a_downloads_copy_of_a_macos_copy_of_a_named_number_is_captioned_as_its_original():
    """Defect found by the audit (mutant: the named-number check before a "(N)" copy dropped): "apollo 11 2" (macOS'
    copy of "apollo 11") is "apollo 11", and so is "apollo 11 (3)"; "apollo 11 2 (3)", a download's copy of that copy,
    was "apollo" (both numbers and the counter taken off). Each copy is now its original's caption."""
    from t2i_cli.name_captions import caption_of

    assert {caption_of(n) for n in ("apollo 11", "apollo 11 2", "apollo 11 (3)", "apollo 11 2 (3)")} == {"apollo 11"}
    assert caption_of("route 66 2 (1)") == "route 66"
    assert caption_of("bird (3)") == "bird" and caption_of("bird 2 (3)") == "bird 2"
