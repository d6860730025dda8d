"""Session 44 (hL): leftovers of this session's first workers, each test failing without its fix."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run


def _pictures(folder: Path, *stems: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, stem in enumerate(stems):
        Image.new("RGB", (16, 16), (30 * i % 256, 90, 200)).save(folder / f"{stem}.png")
    return folder


def _truncated(path: Path) -> Path:
    Image.effect_noise((64, 64), 80).convert("RGB").save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return path


def test_data_caption_leaves_a_picture_t2i_cannot_open_without_a_caption_and_says_so(tmp_path, monkeypatch):
    # a file that is no picture (named .png) was captioned "cut cat", then left out of training as an "unreadable
    # image"; its header is read, not its pixels decoded (a truncated picture is captioned: training names it)
    from t2i_cli import images

    folder = _pictures(tmp_path / "pics", "red_bird")
    (folder / "cut_cat.png").write_bytes(b"not a picture at all" * 10)
    (folder / "empty_fish.png").write_bytes(b"")
    _truncated(folder / "half_owl.png")
    monkeypatch.setattr(images, "load_rgbs", lambda *a, **k: (_ for _ in ()).throw(AssertionError("decoded")))
    r = run("data", "caption", folder)
    assert r.exit_code == 0, r.output
    assert not (folder / "cut_cat.txt").exists() and not (folder / "empty_fish.txt").exists()
    assert (folder / "red_bird.txt").read_text(encoding="utf-8") == "red bird\n"
    assert (folder / "half_owl.txt").read_text(encoding="utf-8") == "half owl\n"
    assert "2 pictures that t2i cannot open left without a caption" in r.stderr
    assert str(folder / "cut_cat.png") in r.stderr and "unreadable image" in r.stderr
    # ... and alone, it is refused in one line naming it (it was captioned)
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "cut_cat.png").write_bytes(b"not a picture at all" * 10)
    r = run("data", "caption", alone)
    assert r.exit_code == 1 and not (alone / "cut_cat.txt").exists()
    assert "no caption to write" in r.stderr and str(alone / "cut_cat.png") in r.stderr
    assert "Traceback" not in r.output


def _sheet(folder: Path, name: str) -> Path:
    """A picture marked as a contact sheet t2i wrote (`data preview --out NAME` inside the folder)."""
    from t2i_cli import images
    from t2i_cli.outputs import SHEET_KEY

    return images.save_png(Image.new("RGB", (16, 16), (9, 9, 9)), folder / name, {"source": str(folder),
                                                                                  SHEET_KEY: "preview"})


def test_training_warning_names_a_sheet_it_would_send_to_data_caption_and_does_not_suggest_it(tmp_path):
    from t2i_cli.data import NothingUsable, open_source

    folder = _pictures(tmp_path / "pics", "red_bird", "blue_fish")
    for stem in ("red_bird", "blue_fish"):
        (folder / f"{stem}.txt").write_text(stem.replace("_", " ") + "\n", encoding="utf-8")
    sheet = _sheet(folder, "sheet.png")
    said = open_source(str(folder), 16).skipped_message()
    assert "t2i data caption" in said and f"{sheet} is a contact sheet t2i wrote" in said
    assert "to caption those without one by their names" not in said  # (data caption declines the sheet)
    assert run("data", "caption", folder).exit_code == 0 and not (folder / "sheet.txt").exists()
    # ... beside a picture data caption would caption, the command is suggested (it names the sheet it declines)
    Image.new("RGB", (16, 16), (1, 2, 3)).save(folder / "green_tree.png")
    said = open_source(str(folder), 16).skipped_message()
    assert f"t2i data caption {folder} (--dry-run" in said
    # ... and a folder of the sheet alone: refused, naming it, with no command that declines
    alone = tmp_path / "alone"
    alone.mkdir()
    _sheet(alone, "sheet.png")
    try:
        open_source(str(alone), 16)
        raise AssertionError("a folder without a usable pair opened")
    except NothingUsable as e:
        assert "is a contact sheet t2i wrote" in str(e) and "by their names" not in str(e)


def test_a_dvae_resumed_after_captions_alone_were_edited_does_not_say_its_result_will_differ(tmp_path):
    """A dVAE sees the pictures alone: "the data changed ...; the result will differ" was said after an edit to
    captions, and was untrue. With --flip it reads them (a caption that says left or right is never mirrored),
    and a transformer reads them always: there it is said."""
    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(6):
        Image.new("RGB", (16, 16), (40 * i, 90, 30)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text("a red bird\n")
    common = ("--preset", "tiny", "--workers", "0", "--data", pics, "--steps", "1", "-q")
    for name, more in (("plain", ()), ("flip", ("--flip",))):
        r = run("train", "--stage", "dvae", *common, *more, "--out", tmp_path / name)
        assert r.exit_code == 0, r.stderr
    (pics / "p3.txt").write_text("a bird on the left\n")
    said = {}
    for name in ("plain", "flip"):
        r = run("train", "--resume", tmp_path / name, "--steps", "2", "-q")
        assert r.exit_code == 0, r.stderr
        said[name] = " ".join(r.stderr.split())
    assert "the data changed" not in said["plain"], said["plain"]
    assert "the data changed since this run started: 6 usable pictures then and now: captions of 1 picture " \
           "edited" in said["flip"], said["flip"]
    # ... and a picture edited is said to a dVAE without --flip as before
    Image.new("RGB", (16, 16), (1, 2, 3)).save(pics / "p0.png")
    r = run("train", "--resume", tmp_path / "plain", "--steps", "3", "-q")
    assert r.exit_code == 0 and "1 picture added, 1 removed" in " ".join(r.stderr.split()), r.stderr


def _stop_at_first_forward(monkeypatch, cls) -> None:
    """A Ctrl-C at the first forward of cls in this process: a stage stopped before its first step."""
    import os
    import signal

    real, calls = cls.forward, {"n": 0}

    def stopped_forward(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(cls, "forward", stopped_forward)


def test_every_next_command_for_a_stage_of_an_unfinished_whole_run_goes_on_with_the_whole_run(tmp_path, monkeypatch):
    """`t2i export RUN/dvae` of a whole run stopped in its dVAE stage said "`t2i train --resume RUN/dvae` finishes
    the run" (that trains the stage alone, and leaves the run undone), and `t2i info RUN/dvae` of its finished dVAE
    said "--dvae RUN/dvae" (an option of a run of its own): each says `t2i train --resume RUN`."""
    from t2i_cli.models.dvae import DVAE
    from t2i_cli.models.transformer import Transformer

    pics = _pictures(tmp_path / "pics", *(f"p{i}" for i in range(8)))
    for i in range(8):
        (pics / f"p{i}.txt").write_text(f"picture {i}\n")
    monkeypatch.chdir(tmp_path)
    common = ("--preset", "tiny", "--steps", "2", "--workers", "0", "--device", "cpu", "-q")
    _stop_at_first_forward(monkeypatch, DVAE)
    r = run("train", "--stage", "all", "--data", "pics", "--out", "RUN", *common)
    assert r.exit_code == 130 and "in the dvae stage at step 0" in r.stderr, r.stderr
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    r = run("export", "RUN/dvae", "--to", "out")
    assert r.exit_code == 0, r.stderr
    assert "RUN/dvae stopped at step 0 of 2: its step-0 model is exported; `t2i train --resume RUN` finishes the " \
           "whole run" in " ".join(r.stderr.split()), r.stderr
    assert "--resume RUN/dvae" not in r.stderr
    _stop_at_first_forward(monkeypatch, Transformer)
    r = run("train", "--resume", "RUN", "--workers", "0", "-q")
    assert r.exit_code == 130 and "in the transformer stage at step 0" in r.stderr, r.stderr
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    for stage in ("tokenizer", "dvae"):  # finished stages of a run that is not
        r = run("info", "RUN/" + stage)
        assert r.exit_code == 0 and r.stdout.splitlines()[-1] == (
            "  next      a stage of the whole run RUN, whose later stages read it: t2i train --resume RUN goes on "
            "with them"), r.stdout
    r = run("info", "RUN/transformer")
    assert r.exit_code == 0 and r.stdout.splitlines()[-1] == "  next      resume with: t2i train --resume RUN"
    r = run("export", "RUN/transformer", "--to", "out2")
    assert r.exit_code == 0 and "`t2i train --resume RUN` finishes the whole run" in " ".join(r.stderr.split())
    # ... and once the whole run is finished, its dVAE serves runs of their own, as before
    r = run("train", "--resume", "RUN", "--workers", "0", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("info", "RUN/dvae")
    assert r.stdout.splitlines()[-1] == "  next      the transformer stage reads it: --dvae RUN/dvae", r.stdout
    # ... and a stage extended alone past the run's steps, then stopped: the whole run's resume finishes it too
    import signal

    from conftest import signal_after_step
    from t2i_cli.weights import read_metadata

    signal_after_step(monkeypatch, 1, signal.SIGINT)
    r = run("train", "--resume", "RUN/transformer", "--steps", "4", "--workers", "0", "-q")
    assert r.exit_code == 130, r.stderr
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    r = run("info", "RUN/transformer")
    assert r.stdout.splitlines()[-1] == "  next      resume with: t2i train --resume RUN", r.stdout
    r = run("export", "RUN/transformer", "--to", "out3")
    assert r.exit_code == 0 and "RUN/transformer stopped at step 3 of 4: its step-3 model is exported; `t2i train " \
                               "--resume RUN` finishes the whole run" in " ".join(r.stderr.split()), r.stderr
    assert run("train", "--resume", "RUN", "--workers", "0", "-q").exit_code == 0
    assert read_metadata(tmp_path / "RUN" / "transformer" / "checkpoint.safetensors")["step"] == "4"


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2,0", "1.5"])
@pytest.mark.parametrize("command", ["generate", "train"])
def test_an_omp_num_threads_libgomp_cannot_read_is_refused_in_one_line(tmp_path, tiny_weights, monkeypatch, value,
                                                                       command):
    """OMP_NUM_THREADS=abc (or 0, -1) went to libgomp, which printed its own warning and ignored it: torch took
    one thread per core, where the README says the variable sets the count. Now one line, exit 2."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    out = tmp_path / "out"
    args = (["generate", "a red bird", "--weights", tiny_weights] if command == "generate"
            else ["train", "--preset", "tiny", "--stage", "tokenizer"])
    line = one_line_failure(run(*args, "--out", out), 2)
    assert line == (f"error: OMP_NUM_THREADS must be a whole number of threads, 1 or more (or OpenMP's list of "
                    f"them, 4,2), got {value!r}; set it to one, or unset it for one thread per core")
    assert not out.exists()


@pytest.mark.parametrize("value", ["2", " +1 ", "2,1"])
def test_an_omp_num_threads_libgomp_reads_is_taken(tmp_path, tiny_weights, monkeypatch, value):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    r = run("generate", "a red bird", "--weights", tiny_weights, "--out", tmp_path / "o", "-q")
    assert r.exit_code == 0, r.stderr


def _t2i(tmp_path, env: dict, *args, stdin=None):
    import os
    import subprocess
    import sys

    from conftest import SRC

    return subprocess.Popen([sys.executable, "-m", "t2i_cli", *map(str, args)], stdin=stdin,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": SRC, **env})


def test_a_bad_omp_num_threads_is_refused_before_a_prompt_pipe_is_read(tmp_path, tiny_weights):
    import subprocess

    proc = _t2i(tmp_path, {"OMP_NUM_THREADS": "abc"}, "generate", "--prompts", "-", "--weights", tiny_weights,
                "--out", tmp_path / "o", stdin=subprocess.PIPE)
    try:
        assert proc.wait(timeout=60) == 2  # the pipe still open: a refusal that waited for it would time out
        err = proc.stderr.read().decode()
    finally:
        proc.stdin.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "OMP_NUM_THREADS must be a whole number" in err and "Traceback" not in err and "libgomp" not in err


def test_an_empty_omp_num_threads_is_as_unset_and_libgomp_does_not_warn_of_it(tmp_path, tiny_weights):
    """libgomp reads an empty OMP_NUM_THREADS (`OMP_NUM_THREADS=$N`, N unset) as invalid, warns in its own words
    and takes one thread per core: t2i takes it as unset, without that warning."""
    proc = _t2i(tmp_path, {"OMP_NUM_THREADS": ""}, "generate", "a red bird", "--weights", tiny_weights, "--out",
                tmp_path / "o", "-q")
    assert proc.wait(timeout=120) == 0
    err = proc.stderr.read().decode()
    assert "libgomp" not in err and "Invalid value" not in err, err
    assert (tmp_path / "o" / "a-red-bird-000.png").is_file()


def test_codes_kept_by_an_image_prompt_use_no_random_numbers():
    """An image prompt's kept codes are taken, not drawn: they use none of the seed's random numbers, so the codes
    drawn after a run of kept ones are those the same generator state draws with no such run before them (a draw
    made and thrown away at each kept position shifted every later draw: other pixels for one seed)."""
    import torch

    from t2i_cli.models.transformer import Transformer, TransformerConfig
    from t2i_cli.sampling import draw_codes, sample_next
    from t2i_cli.sampling_config import SamplingConfig

    torch.manual_seed(0)
    model = Transformer(TransformerConfig(text_vocab=40, text_len=8, image_vocab=32, grid=4, n_layer=2, n_head=2,
                                          n_embd=32)).eval()
    n = model.cfg.n_image
    text, uncond = torch.randint(1, 40, (1, 8)), torch.zeros(8, dtype=torch.long)
    cfg = SamplingConfig()  # (guided, as generate draws)
    known = torch.randint(0, 32, (1, n))
    keep = torch.zeros(1, n, dtype=torch.bool)
    keep[0, 1:6] = True  # code 0 drawn, codes 1-5 kept, the rest drawn
    with torch.inference_mode():
        codes, _ = draw_codes(model, text, uncond, cfg, torch.Generator().manual_seed(7), known=known, keep=keep)
        assert torch.equal(codes[0, 1:6], known[0, 1:6])
        # the same state: one code drawn (code 0), then codes 0-5 all given, read in one pass, nothing drawn
        after_one = torch.Generator().manual_seed(7)
        sample_next(torch.zeros(1, 32), cfg, after_one)
        given = torch.zeros(1, n, dtype=torch.bool)
        given[0, :6] = True
        again, _ = draw_codes(model, text, uncond, cfg, after_one, known=codes, keep=given)
    assert torch.equal(again, codes)
    assert len(set(codes[0, 6:].tolist())) > 1  # (codes drawn, not one repeated)


def test_data_caption_names_the_pictures_of_a_format_t2i_cannot_read_beside_those_it_captions(tmp_path):
    """A HEIC picture beside pictures data caption captions went unsaid (it was named only in a folder without a
    picture t2i reads): it is counted and named, as training's warning names it."""
    folder = _pictures(tmp_path / "pics", "red_bird")
    (folder / "blue_fish.heic").write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    r = run("data", "caption", folder)
    assert r.exit_code == 0 and (folder / "red_bird.txt").is_file() and not (folder / "blue_fish.txt").exists()
    assert (f"1 HEIC picture (t2i cannot read HEIC: convert to JPEG or PNG) not captioned, e.g. "
            f"{folder / 'blue_fish.heic'}") in " ".join(r.stderr.split()), r.stderr
