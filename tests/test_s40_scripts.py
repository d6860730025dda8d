"""Session 40: captions and prompts in other languages and scripts (accented Latin in NFC and NFD, Cyrillic, Chinese
and Japanese without spaces, Arabic and Hebrew, emoji)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from conftest import build_tiny_folder, run
from t2i_cli.files import safe_stem

NFD_CAFE = unicodedata.normalize("NFD", "un café noir")
CAPTIONS = ["红色的鸟", "蓝色的鱼", "红色的房子", "красная птица", "синяя рыба", "un café noir", "grüne Straße"]


def test_prompts_without_ascii_letters_get_names_of_their_own(tmp_path: Path):
    """Every prompt in Chinese, Cyrillic, Arabic or emoji was written as image-NNN.png: two prompts in one folder were
    told apart only by a counter that numbered one's files after the other's (蓝色的鱼 drew image-001 after 红色的鸟's
    image-000). Such a name now ends in a hash of the prompt's words as the model reads them: two prompts, two
    names; the same prompt in another case or Unicode form, one name."""
    weights = build_tiny_folder(tmp_path / "w", captions=CAPTIONS)
    out = tmp_path / "out"
    names = {}
    for prompt in ["红色的鸟", "蓝色的鱼", "красная птица", "Красная  птица", "🐦", "🐟", "un café noir", NFD_CAFE]:
        r = run("generate", prompt, "--weights", weights, "--out", out, "--candidates", "1", "-q")
        assert r.exit_code == 0, r.stderr
        names[prompt] = Path(r.stdout.strip()).name
    assert names["红色的鸟"].startswith("image-") and names["红色的鸟"].endswith("-000.png")
    assert len({names[p] for p in ["红色的鸟", "蓝色的鱼", "красная птица", "🐦", "🐟"]}) == 5
    assert all(name.endswith("-000.png") for p, name in names.items() if p not in ("Красная  птица", NFD_CAFE))
    assert names["Красная  птица"] == names["красная птица"].replace("-000.png", "-001.png")
    assert (names["un café noir"], names[NFD_CAFE]) == ("un-cafe-noir-000.png", "un-cafe-noir-001.png")
    # letters with an ASCII form keep it; a zero-width space parts words as the tokenizer parts them
    assert safe_stem("grüne Straße") == "grune-strasse" and safe_stem("a\u200bred bird") == "a-red-bird"
    assert safe_stem("mixed 红色 rouge").startswith("mixed-rouge-") and safe_stem("???") == "image"


def test_sheet_labels_draw_decomposed_accents_as_composed_ones():
    """A caption in NFD (macOS file names, `t2i data caption` of `crème-brûlée.png`) was drawn on `data preview`,
    `--grid` and rerank sheets with a box after each accented letter ("cafe▯ noir"), where its NFC form was drawn as
    "cafe noir"."""
    from t2i_cli.images import drawable

    for text in ["un café noir", "crème brûlée", "grüne Straße", "con cá màu xanh"]:
        assert drawable(unicodedata.normalize("NFD", text)) == drawable(text)
    assert drawable(NFD_CAFE) == "un cafe noir" and drawable("q\u0301 ё") == "q ё"
    assert drawable(unicodedata.normalize("NFD", "ёж")) == "ёж"  # a mark on a letter without an ASCII form stays


def test_unknown_word_warning_reads_scripts_without_spaces_by_their_pieces(tmp_path: Path):
    """The pre-tokenizer splits at spaces, so a Chinese or Japanese prompt is one "word", which the tokenizer reads as
    the pieces it learned: "红色的鱼" (红色的 + 鱼, both in the captions) was warned about as "not in the tokenizer's
    vocabulary ... may be ignored", on every new combination of known words, where "a red fish" was not. Only an
    unknown piece is warned about there; a spaced script's word split into pieces still is. (A tokenizer trained now
    reads each CJK ideograph as a word, test_s42_text: "红色的鱼" is four known words; "赤い鱼" has two unknown.)"""
    weights = build_tiny_folder(tmp_path / "w", captions=CAPTIONS + ["a red bird", "a blue fish"])
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.from_file(weights / "tokenizer.json")
    assert len(tok.encode("红色的鱼", 12).ids) == 12 and tok.unread_words("红色的鱼") == ([], 4)
    assert tok.decode(tok.encode("红色的鱼", 12).ids).split() == ["红", "色", "的", "鱼"]  # known, as a red fish's
    for prompt, warned in [("红色的鱼", None), ("a red fish", None), ("赤い鱼", "赤, い"), ("a zebra", "zebra")]:
        r = run("generate", prompt, "--weights", weights, "--out", tmp_path / "out", "--candidates", "1")
        assert r.exit_code == 0, r.stderr
        said = [line for line in r.stderr.splitlines() if "not in the tokenizer's vocabulary" in line]
        assert said == ([] if warned is None else [said[0]]) and (warned is None or said[0].endswith(f": {warned}"))


def test_words_of_a_decomposed_prompt_keep_their_last_accent(tiny_weights: Path):
    """A word of an NFD prompt (macOS, copied from a file name) ending in an accented letter was named without its
    accent in the unknown-word warning and rerank --explain's word list: "cafe" for "café"."""
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.from_file(tiny_weights / "tokenizer.json")
    assert [w for w, _ in tok.words(NFD_CAFE, 12)] == NFD_CAFE.split()
    assert [w for w, _ in tok.words("red!\u0301 bird", 12)] == ["red", "!", "\u0301", "bird"]  # (no overlap)
    assert unicodedata.normalize("NFD", "café") in tok.encode(NFD_CAFE, 12).unknown_words  # the model's, English
    assert tok.encode(unicodedata.normalize("NFD", "crème brûlée"), 12).unknown_words == \
        unicodedata.normalize("NFD", "crème brûlée").split()


def test_a_prompt_file_line_in_another_unicode_form_is_a_repeat(tmp_path: Path):
    """A --prompts line in decomposed form (NFD) and one in composed form read the same to the model (NFKC), but were
    both drawn: the same images twice, under two names. Now the later is a repeat, said in the one warning. The
    world's prompt parser reads them composed (NFC) too: a decomposed accent on a colour word read as that colour."""
    from t2i_cli.prompt_file import read_prompts
    from t2i_cli.world.captions import parse_prompt, region_prompts

    weights = build_tiny_folder(tmp_path / "w", captions=CAPTIONS)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text(f"un café noir\n{NFD_CAFE}\nUn Café  Noir\n红色的鸟\n", encoding="utf-8")
    assert [p.line for p in read_prompts(prompts).prompts] == [1, 4]
    r = run("generate", "--prompts", prompts, "--weights", weights, "--out", tmp_path / "out", "--candidates", "1")
    assert r.exit_code == 0, r.stderr
    assert "2 lines repeat an earlier prompt" in r.stderr and "line 2 (line 1), line 3 (line 1)" in r.stderr
    assert len(r.stdout.split()) == 2
    nfd = unicodedata.normalize("NFD", "a blué bird and a red fish")
    assert parse_prompt(nfd) == parse_prompt("a blué bird and a red fish") and region_prompts(nfd) is None
    assert region_prompts("a blue bird and a red fish") is not None


def _picture(path: Path, colour: tuple[int, int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", (16, 16), colour).save(path)
    return path


def test_a_picture_and_its_caption_named_in_two_unicode_forms_are_a_pair(tmp_path: Path):
    """A Mac writes "café.png" decomposed (NFD); a caption file written on Linux or Windows, or a manifest, names it
    composed (NFC). The two names look alike everywhere, yet the folder said "caption without image: café.txt" and
    "image without caption: café.png" (and `data caption` would have written a second café.txt beside the first),
    a manifest said "missing image", and rerank ranked the picture with no prompt. Now they are one name, as the
    letter case of a name already was."""
    from t2i_cli import data

    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    pics = tmp_path / "pics"
    pics.mkdir()
    _picture(pics / f"{nfd}.png", (200, 30, 30))
    (pics / f"{nfc}.txt").write_text("un café\n", encoding="utf-8")
    _picture(pics / f"{nfc}-2.png", (30, 30, 200))
    (pics / f"{nfd}-2.txt").write_text("un autre café\n", encoding="utf-8")
    ds = data.open_source(str(pics), 16, list_skipped=True)
    assert sorted(captions for _, captions in ds.pairs) == [["un autre café"], ["un café"]]
    assert ds.skipped_message() is None
    assert "nothing to write" in run("data", "caption", pics, "--dry-run").stdout
    assert data.caption_beside(pics / f"{nfd}.png") == (pics / f"{nfc}.txt", "un café")  # rerank's reading

    manifest = tmp_path / "ds"
    manifest.mkdir()
    _picture(manifest / f"{nfd}.png", (200, 30, 30))
    _picture(manifest / "other.png", (30, 200, 30))
    (manifest / "metadata.csv").write_text(f"file_name,text\n{nfc}.png,un café\nother.png,green\n", encoding="utf-8")
    ds = data.open_source(str(manifest / "metadata.csv"), 16, list_skipped=True)
    assert sorted(captions for _, captions in ds.pairs) == [["green"], ["un café"]] and ds.skipped_message() is None


def test_a_long_word_without_spaces_is_said_in_brief(tiny_weights: Path, tmp_path: Path):
    """A prompt of one long word (a paragraph of Chinese or Japanese, which has no spaces, a pasted hash) was printed
    whole in the unknown-word warning, and a --prompts line whole in both its warnings: a line of 100,000 characters
    for a prompt of 100,000. Each word is now shown to 40 characters and its length, at most 20 words, and a line's
    prompt to 60."""
    r = run("generate", "ab" * 5000, "--weights", tiny_weights, "--out", tmp_path / "o", "--candidates", "1")
    assert r.exit_code == 0, r.stderr
    assert max(map(len, r.stderr.splitlines())) < 400 and "... (10,000 characters)" in r.stderr
    r = run("generate", " ".join(f"w{i}" for i in range(30)), "--weights", tiny_weights, "--out", tmp_path / "o",
            "--candidates", "1")
    assert r.exit_code == 0 and "w19, and 10 more" in r.stderr and "w20" not in r.stderr, r.stderr
    prompts = tmp_path / "p.txt"
    prompts.write_text("红" * 900 + "\n", encoding="utf-8")
    r = run("generate", "--prompts", prompts, "--weights", tiny_weights, "--out", tmp_path / "o", "--candidates", "1")
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2 and max(map(len, lines)) < 400 and all('line 1 ("' + "红" * 60 + '... (900 characters)")'
                                                                   in line for line in lines), r.stderr


def test_training_and_eval_name_a_long_unknown_word_in_brief(tiny_weights: Path, tmp_path: Path):
    """A caption in a script written without spaces is one word to the tokenizer, however long: the tokenizer
    stage's unknown-word warning and `eval --data`'s named such a caption whole ("e.g. '...'"), a paragraph in a
    line. (Hangul syllables: a CJK ideograph is a word of its own to a tokenizer trained now, test_s42_text.)"""
    pics = tmp_path / "pics"
    pics.mkdir()
    han = [chr(0xAC00 + i) for i in range(3000)]
    for i in range(3):
        _picture(pics / f"p{i}.png", (60 * i, 100, 200 - 60 * i))
        (pics / f"p{i}.txt").write_text("".join(han[i * 1000:(i + 1) * 1000]) + "\n", encoding="utf-8")
    r = run("train", "--stage", "tokenizer", "--data", pics, "--out", tmp_path / "tok", "--vocab-size", "64")
    assert r.exit_code == 0, r.stderr
    (said,) = [line for line in r.stderr.splitlines() if "as unknown" in line]
    assert len(said) < 400 and "... (1,000 characters)'" in said
    r = run("eval", "--data", pics, "--weights", tiny_weights, "--n", "2", "--device", "cpu")
    assert r.exit_code == 0, r.stderr
    (said,) = [line for line in r.stderr.splitlines() if "did not learn whole" in line]
    assert len(said) < 600 and "... (1,000 characters)" in said


def test_names_are_captioned_in_any_script_and_composed(tmp_path: Path):
    """`t2i data caption` split a name at inner capitals of ASCII alone: "CaféNoir" was "cafénoir", "КраснаяПтица"
    "краснаяптица". A decomposed name (a Mac's) was written as a decomposed caption, which the copies check and an
    editor's search read as other text than the same caption typed."""
    from t2i_cli.name_captions import caption_of

    for name, caption in [("CaféNoir", "café noir"), ("КраснаяПтица", "красная птица"),
                          ("ΚόκκινοΠουλί", "κόκκινο πουλί"), ("ÜBERSee", "über see"), ("红色的鸟3", "红色的鸟"),
                          ("RedBird2", "red bird"), ("HTMLParser", "html parser"), ("MP3Player", "mp 3 player")]:
        assert caption_of(name) == caption_of(unicodedata.normalize("NFD", name)) == caption, name
    assert caption_of("3D") is None and caption_of("16x16") is None
    pics = tmp_path / "pics"
    pics.mkdir()
    nfd = unicodedata.normalize("NFD", "crème-brûlée")
    _picture(pics / f"{nfd}.png", (200, 100, 50))
    r = run("data", "caption", pics)
    assert r.exit_code == 0, r.stderr
    assert (pics / f"{nfd}.txt").read_bytes() == "crème brûlée\n".encode() == \
        unicodedata.normalize("NFC", "crème brûlée\n").encode()


def test_a_caption_of_characters_that_draw_nothing_is_empty(tmp_path: Path):
    """A caption line of a zero-width space, or only the direction marks of Arabic or Hebrew text (LRM, RLM), was a
    caption: trained on as an unknown token or a mark, where the same text as a prompt is refused as empty. It is
    an empty caption now, in a caption file, a JSONL manifest and a CSV one; a caption beside it on its own line
    stays."""
    from t2i_cli import data

    pics = tmp_path / "pics"
    pics.mkdir()
    for name, caption, colour in [("zw", "\u200b\n", (250, 0, 0)), ("marks", "\u200f\u200e\n", (0, 250, 0)),
                                  ("two", "\u200b\nطائر أحمر\u200f\n", (0, 0, 250)), ("ok", "a bird\n", (9, 9, 9))]:
        _picture(pics / f"{name}.png", colour)
        (pics / f"{name}.txt").write_text(caption, encoding="utf-8")
    ds = data.open_source(str(pics), 16, list_skipped=True)
    assert sorted(captions for _, captions in ds.pairs) == [["a bird"], ["طائر أحمر\u200f"]]
    assert "2 empty captions" in ds.skipped_message()
    (pics / "metadata.jsonl").write_text(
        '{"file_name": "zw.png", "text": "\\u200b"}\n{"file_name": "two.png", "text": ["\\u200f", "a"]}\n'
        '{"file_name": "ok.png", "text": "b"}\n', encoding="utf-8")
    ds = data.open_source(str(pics / "metadata.jsonl"), 16, list_skipped=True)
    assert sorted(captions for _, captions in ds.pairs) == [["a"], ["b"]] and "1 empty caption" in ds.skipped_message()
    (pics / "metadata.csv").write_text("file_name,text\nzw.png,\u200b\u200f\nok.png,b\n", encoding="utf-8")
    ds = data.open_source(str(pics / "metadata.csv"), 16, list_skipped=True)
    assert [captions for _, captions in ds.pairs] == [["b"]] and "1 empty caption" in ds.skipped_message()


def test_explain_lines_up_the_scores_of_wide_words(tmp_path: Path):
    """rerank --explain right-aligned each word in 12 characters, but a Chinese or Japanese character takes two
    columns of a terminal: the scores of such words stood out of line with the others."""
    weights = build_tiny_folder(tmp_path / "w", captions=CAPTIONS)
    out = tmp_path / "out"
    r = run("generate", "红色的鸟 и 赤い鳥 café", "--weights", weights, "--out", out, "--candidates", "1", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("rerank", out, "--weights", weights, "--explain")
    assert r.exit_code == 0, r.stderr
    rows = r.stdout.splitlines()
    rows = rows[next(i for i, row in enumerate(rows) if row.startswith("word contributions")) + 1:][:4]
    columns = [sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in row[:row.rindex(" ")])
               for row in rows]
    assert [row.split()[0] for row in rows] == ["红色的鸟", "и", "赤い鳥", "café"] and columns == [14] * 4, rows
