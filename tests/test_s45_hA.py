"""Session 45 (hA): tidies of a closing read, each test failing without its fix."""

from __future__ import annotations


def test_a_character_normalised_to_several_words_is_one_unread_word():
    """"½", which NFKC makes "1⁄2" (three words to the pre-tokenizer, each an [UNK] where the vocabulary lacks
    them), was three unread words of three to unread_words: the tokenizer stage's share of unknown caption words
    counted it thrice and named it thrice. It is one word of the caption, as TextTokenizer.words reads it."""
    from t2i_cli.models.tokenizer import TextTokenizer
    from t2i_cli.stages import unknown_share

    tok = TextTokenizer.train(["a red apple", "a blue bird"] * 4, vocab_size=64)
    assert tok.unread_words("½ apple") == (["½"], 2)
    assert [word for word, _ in tok.words("½ apple", 16)] == ["½", "apple"]
    assert tok.encode("½ apple", 16).unknown_words == ["½"]
    assert unknown_share(tok, ["½ apple", "a red bird"]) == (1, 5, "½")
    learned = TextTokenizer.train(["½ apple", "a blue bird"] * 4, vocab_size=64)
    assert learned.unread_words("½ apple") == ([], 2)


def _photo(path, w: int, h: int, seed: int = 0):
    import numpy as np
    from PIL import Image

    a = np.random.default_rng(seed).integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    Image.fromarray(a).resize((w, h), Image.BILINEAR).save(path, quality=90)
    return path


def test_load_rgbs_reads_a_jpegs_header_once_per_decode(tmp_path, monkeypatch):
    """load_rgbs opened a JPEG once more for each side but the largest, to ask im.draft what it would say there: a
    2,400 px JPEG at 32 and 64 (scales 8 and 4: two decodes) was opened three times, a 200 px one (one decode)
    twice. Once per decode now, the same bytes as load_rgb's at each side."""
    from PIL import Image

    from t2i_cli import images

    small, large = _photo(tmp_path / "small.jpg", 200, 150), _photo(tmp_path / "large.jpg", 2400, 2000, 1)
    want = {(p, s): images.load_rgb(p, s).tobytes() for p in (small, large) for s in (32, 64)}
    opens = []
    real = Image.open
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: opens.append(fp) or real(fp, *a, **k))
    for path, decodes in ((small, 1), (large, 2)):
        opens.clear()
        got = images.load_rgbs(path, (32, 64, 20))
        assert len(opens) == decodes, opens
        assert {s: got[s].tobytes() for s in (32, 64)} == {s: want[path, s] for s in (32, 64)}
        assert got[20].tobytes() == images.load_rgb(path, 20).tobytes()


def test_draft_scale_is_the_scale_pillow_drafts_a_jpeg_at(tmp_path):
    """_draft_scale(size, side) says what im.draft picks for load_rgb at side (load_rgbs groups sides by it): at
    every side from 1 to past the picture's, for wide, tall and small JPEGs."""
    from t2i_cli import images

    for w, h in ((2400, 2000), (640, 4000), (200, 150), (33, 17)):
        path = _photo(tmp_path / f"{w}x{h}.jpg", w, h)
        for side in range(1, max(w, h) // 2, 7):
            with images.opened(path) as im:
                _, box = im.draft(None, (images.DRAFT_MARGIN * side, images.DRAFT_MARGIN * side))
            assert w / box[2] == images._draft_scale((w, h), side), (w, h, side)


def test_info_checks_a_weights_folders_export_journal_once(tiny_weights, monkeypatch):
    """`t2i info` (weights.folder_info) looked for an unfinished export's journal twice, itself and in load_folder;
    once now, for a whole folder and for a folder of some files. What it says is as before: the models described
    alike whole or partial, and a folder with a journal refused."""
    import shutil

    from t2i_cli import weights
    from t2i_cli.errors import WeightsError

    checked = []
    real = weights.check_export_whole
    monkeypatch.setattr(weights, "check_export_whole", lambda folder: checked.append(folder) or real(folder))
    whole = weights.folder_info(tiny_weights)
    assert checked == [tiny_weights] and whole["missing"] == [] and whole["identity"]
    part = tiny_weights.parent / "part"
    part.mkdir()
    for name in ("tokenizer.json", "dvae.safetensors"):
        shutil.copy(tiny_weights / name, part / name)
    checked.clear()
    partial = weights.folder_info(part)
    assert checked == [part] and partial["missing"] == ["transformer.safetensors"]
    assert partial["models"] == {k: whole["models"][k] for k in ("tokenizer", "dvae")}
    assert set(whole["models"]["dvae"]) == {"parameters", "config", "sha256"} and whole["models"]["dvae"]["parameters"]
    for folder in (tiny_weights, part):
        (folder / weights.EXPORT_JOURNAL).write_text("{}")
        try:
            weights.folder_info(folder)
        except WeightsError as e:
            assert "an export into it was killed" in str(e), e
        else:
            raise AssertionError(f"{folder} with an export's journal was described")


def test_link_best_saves_its_record_once_per_change_where_the_disk_has_no_hard_links(tmp_path, monkeypatch):
    """--link-best names each copy in best/'s record before the copy has its name. Where the disk has no hard links
    (FAT, some network shares) write_new reserves the name and names it again: the record was saved twice alike for
    each copy. Saved once per change now; the copies and the record as before, and a failed copy still leaves the
    record naming none but the copies there."""
    import errno
    import json
    import os

    import pytest
    from PIL import Image

    from t2i_cli import files
    from t2i_cli import rerank as rr
    from t2i_cli.errors import OutputError

    folder = tmp_path / "pics"
    folder.mkdir()
    ranked = []
    for i, colour in enumerate(((200, 30, 30), (30, 200, 30), (30, 30, 200))):
        Image.new("RGB", (8, 8), colour).save(folder / f"p{i}.png")
        ranked.append(rr.Ranked(folder / f"p{i}.png", "a red bird", 1.0 - i / 10, i + 1))
    saves = []
    real_save = rr.atomic_write_json
    monkeypatch.setattr(rr, "atomic_write_json", lambda path, obj: saves.append(dict(obj)) or real_save(path, obj))

    def no_links(src, dst):
        raise OSError(errno.EPERM, "no hard links here")

    monkeypatch.setattr(files.os, "link", no_links)
    copies, new = rr.link_best(folder, ranked, 2)
    assert new == 2 and sorted(p.name for p in copies) == ["p0-000.png", "p1-000.png"]
    assert all(a != b for a, b in zip(saves, saves[1:], strict=False)), saves  # (each save a change)
    assert saves == [{}, {"p0-000.png": saves[1]["p0-000.png"]}, saves[-1]] and len(saves[-1]) == 2, saves
    record = json.loads((folder / "best" / rr.BEST_RECORD).read_text())
    assert record == {p.name: files.sha256_of(p).hexdigest() for p in copies}
    # a copy that fails once named: the record back to the copies there, saved once more
    saves.clear()
    monkeypatch.setattr(files.os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OutputError):
        rr.link_best(folder, ranked, 3)
    assert saves[-1] == record and not (folder / "best" / "p2-000.png").exists(), saves
    assert json.loads((folder / "best" / rr.BEST_RECORD).read_text()) == record
    assert sorted(os.listdir(folder / "best")) == sorted([*record, rr.BEST_RECORD])  # (no reserved name left)
