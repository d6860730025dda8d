"""Stop lines and help text of the remaining commands (session 47, hH): each defect's test fails without its fix."""

from __future__ import annotations

import os
import re
import signal

from conftest import run


def stopped(r) -> str:
    """A stopped command's one line (exit 130, no traceback)."""
    assert r.exit_code == 130, (r.exit_code, r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    return lines[0]


def test_every_commands_arguments_are_named_alike_in_help_and_errors():
    """`rerank --help` showed `{folder}` and `vary --help` `{source}` (Typer's lowercase parameter names), where
    export showed `{RUN}` and every docstring says FOLDER, SOURCE, PROMPT: each argument is now named in capitals,
    in the usage line, the Arguments list and a missing argument's error."""
    usage = {"generate": "[PROMPT]", "vary": "{SOURCE}", "info": "[FOLDER]", "export": "{RUN}...",
             "rerank": "{FOLDER}", "data preview": "[SOURCE]", "data caption": "{FOLDER}"}
    for command, name in usage.items():
        r = run(*command.split(), "--help")
        assert r.exit_code == 0, r.stderr
        line = next(line for line in r.stdout.splitlines() if line.startswith("Usage:"))
        assert line.endswith(f"{command} [OPTIONS] {name}"), line
        bare = name.strip("[]{}.")
        assert re.search(rf"^Arguments:\n  {bare} <", r.stdout, re.M), r.stdout
        assert not re.search(r"[\[{][a-z]+[\]}]", r.stdout.split("\n\n")[0]), r.stdout
    for command, name in (("vary", "SOURCE"), ("rerank", "FOLDER"), ("data caption", "FOLDER")):
        r = run(*command.split())
        assert r.exit_code == 2 and r.stderr.startswith(f"error: Missing argument '{name}'"), r.stderr


def test_a_stop_of_data_world_says_the_scenes_it_kept(tmp_path, monkeypatch):
    """`t2i data world` stopped said the generic "finished files are kept; nothing partial was written", of none
    (and left the --out folder it made, empty) or of scenes it names nowhere. It now says "nothing was written" (the
    folders it made are removed), then how many scenes it wrote, each whole, that the same command writes the rest,
    and the scenes a stopped run had written before."""
    from t2i_cli import data

    real_scene, real_write = data.world.scene, data.atomic_write_bytes
    common = ["--split", "val", "--n", "3", "--side", "16", "-q"]
    out = tmp_path / "new" / "w"

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(data.world, "scene", stop)
        assert stopped(run("data", "world", *common, "--out", out)) == "interrupted: nothing was written"
    assert not (tmp_path / "new").exists()
    writes = []

    def stop_after_the_second_scene(path, payload):
        written = real_write(path, payload)
        writes.append(written)
        if len(writes) == 6:  # (the second scene's spec, its last file: in place)
            os.kill(os.getpid(), signal.SIGINT)
        return written

    whole = "each whole (picture, caption and spec)"
    with monkeypatch.context() as m:
        m.setattr(data, "atomic_write_bytes", stop_after_the_second_scene)
        r = run("data", "world", *common, "--out", out)
    assert stopped(r) == (f"interrupted: 2 scenes written to {out}, {whole}; the same command writes the rest; "
                          f"nothing partial was written")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in writes)
    with monkeypatch.context() as m:
        m.setattr(data.world, "scene", stop)
        r = run("data", "world", *common, "--out", out)
    assert stopped(r) == (f"interrupted: nothing was written; {out} keeps the 2 scenes written before, {whole}; "
                          f"the same command writes the rest; nothing partial was written")
    with monkeypatch.context() as m:
        m.setattr(data.world, "scene", lambda *a, **k: (stop if a[1] == 3 else real_scene)(*a, **k))
        r = run("data", "world", *common[:2], "--n", "4", *common[4:], "--out", out)
    assert stopped(r) == (f"interrupted: 1 scene written to {out} (2 written before, kept), {whole}; the same "
                          f"command writes the rest; nothing partial was written")
    r = run("data", "world", *common[:2], "--n", "4", *common[4:], "--out", out)
    assert r.exit_code == 0 and r.stdout.strip() == f"wrote 1 scene to {out} (3 written before, kept)", r.stdout


def test_a_stop_of_data_preview_says_whether_its_sheet_was_written(tmp_path, monkeypatch):
    """`t2i data preview` stopped said "finished files are kept; nothing partial was written" while it read the
    source and drew the sheet, before writing anything, and of its one sheet once written. It now says "nothing
    was written" until the sheet is, then that the sheet written is kept, also where the stop came as its file was
    renamed into place."""
    from t2i_cli import data, images

    real_save = images.save_png

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(data, "open_source", stop)
        r = run("data", "preview", "--n", "2", "--side", "16", "-q", "--out", tmp_path / "a.png")
        assert stopped(r) == "interrupted: nothing was written"

    def stop_once_saved(*a, **k):
        path = real_save(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, the sheet in place
        return path

    with monkeypatch.context() as m:
        m.setattr(images, "save_png", stop_once_saved)
        r = run("data", "preview", "--n", "2", "--side", "16", "-q", "--out", tmp_path / "b.png")
    assert stopped(r) == (f"interrupted: the contact sheet written to {tmp_path / 'b.png'} is kept; nothing partial "
                          f"was written")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png"]


def test_a_stop_of_data_caption_says_the_caption_files_it_kept(tmp_path, monkeypatch):
    """`t2i data caption` stopped said "finished files are kept; nothing partial was written" while it checked
    the pictures, before writing anything, and of caption files it names nowhere once writing (a stop as a file
    was linked into place left it uncounted). It now says "nothing was written", then how many caption files it
    wrote, each whole, and that the same command writes the rest."""
    from PIL import Image

    from t2i_cli import data, name_captions

    pics = tmp_path / "pics"
    pics.mkdir()
    for name in ("red-bird", "blue-cat", "green-fish"):
        Image.new("RGB", (64, 64), (200, 30, 30)).save(pics / f"{name}.png")
    real_write, writes = name_captions.write_if_absent, []

    def stop(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(data, "plan_captions", stop)
        assert stopped(run("data", "caption", pics, "-q")) == "interrupted: nothing was written"
    assert not list(pics.glob("*.txt"))

    def stop_at(n):
        def write(path, payload):
            made = real_write(path, payload)
            writes.append(path)
            if len(writes) == n:
                os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, the caption file in place
            return made
        return write

    with monkeypatch.context() as m:
        m.setattr(name_captions, "write_if_absent", stop_at(2))
        r = run("data", "caption", pics, "-q")
    assert stopped(r) == (f"interrupted: 2 caption files written under {pics}, each whole; the same command writes "
                          f"the rest; nothing partial was written")
    assert sorted(pics.glob("*.txt")) == sorted(writes)
    with monkeypatch.context() as m:
        m.setattr(name_captions, "write_if_absent", stop_at(3))
        r = run("data", "caption", pics, "-q")
    assert stopped(r) == (f"interrupted: 1 caption file written under {pics}, each whole; none is left to write; "
                          f"nothing partial was written")
    assert len(list(pics.glob("*.txt"))) == 3 and not [p for p in pics.iterdir() if p.name.startswith(".")]


def test_a_stop_of_export_says_whether_its_files_were_written(tmp_path, monkeypatch):
    """`t2i export` stopped said "finished files are kept; nothing partial was written" before its files were
    renamed into place (none written: the folder as it was), and alike once they all were. It now says "nothing
    was written" until then, and the files written (all of the export's, at once) after, also where the stop came
    during the renames, which it waits for."""
    from t2i_cli import files

    assert run("train", "--stage", "tokenizer", "--preset", "tiny", "-q", "--out", tmp_path / "tok").exit_code == 0
    real_temporary, real_journal = files._finished_temporary, files.atomic_write_json

    def stop_once_made(path, write, *a, **k):  # Ctrl-C as the temporary is written, before the renames
        def written_then_stopped(tmp):
            write(tmp)
            raise KeyboardInterrupt
        return real_temporary(path, written_then_stopped, *a, **k)

    def last_line(r) -> str:  # (after the warning that a tokenizer alone is no folder generate loads)
        assert r.exit_code == 130 and "Traceback" not in r.stdout + r.stderr, (r.exit_code, r.stderr)
        return r.stderr.strip().splitlines()[-1]

    w = tmp_path / "new" / "w"
    with monkeypatch.context() as m:
        m.setattr(files, "_finished_temporary", stop_once_made)
        assert last_line(run("export", tmp_path / "tok", "--to", w)) == "interrupted: nothing was written"
    assert not (tmp_path / "new").exists()

    def stop_in_the_renames(*a, **k):
        real_journal(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before the first rename: it waits for the last

    with monkeypatch.context() as m:
        m.setattr(files, "atomic_write_json", stop_in_the_renames)
        r = run("export", tmp_path / "tok", "--to", w)
    assert last_line(r) == (f"interrupted: 1 file written to {w}, the export's whole set (tokenizer.json); nothing "
                            f"partial was written")
    assert sorted(p.name for p in w.iterdir()) == ["tokenizer.json"]


def test_a_stop_of_info_says_nothing_was_written(tmp_path, tiny_weights, monkeypatch):
    """`t2i info` stopped (Ctrl-C as it reads a large folder) said "finished files are kept; nothing partial was
    written", of a command that writes nothing; it says "nothing was written" now."""
    from t2i_cli import run_info

    def stop(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_info, "is_run", stop)
    r = run("info", tiny_weights)
    assert stopped(r) == "interrupted: nothing was written" and r.stdout == ""
