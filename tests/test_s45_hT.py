"""Small leftovers of session 45 (hT): counts the Python API bounds as the commands do, refusals that show a huge
number safely, t2i's temporaries told from a user's files, export_runs' words to Python, and caption_of's -min."""

from __future__ import annotations

from pathlib import Path

import pytest

from t2i_cli.errors import UsageError

HUGE = 10**5000  # past the 4,300 digits Python writes: str(HUGE) raises ValueError


@pytest.fixture
def pipe(tiny_weights: Path):
    from t2i_cli.pipeline import TextToImage

    return TextToImage.from_folder(tiny_weights, "cpu")


def test_the_api_draws_no_more_images_a_call_than_the_command_line(pipe):
    """pipe("a red bird", n=10**5000, seed=0) drew on for ever, holding every image, with no word (the commands
    stop at --n 256): n past MAX_IMAGES is refused before anything is drawn, in pipe(), batches and redraw."""
    from t2i_cli.cli import MAX_N
    from t2i_cli.sampling_config import MAX_IMAGES

    assert MAX_N == MAX_IMAGES == 256
    ticks: list[int] = []
    for n in (MAX_IMAGES + 1, HUGE):
        with pytest.raises(UsageError, match=r"^n must be at most 256 images a call \(as --n\), got "):
            pipe("a red bird", n, 0, progress=ticks.append)
        with pytest.raises(UsageError, match="^n must be at most 256 images a call"):
            next(pipe.batches(pipe.request("a red bird"), n, 0))
        with pytest.raises(UsageError, match="^n must be at most 256 images a call"):
            pipe.redraw(pipe.request("a red bird"), n, 0, 0)
    assert ticks == []
    assert len(pipe("a red bird", 2, 0)) == 2


def test_world_evaluation_counts_are_bounded_as_eval_bounds_them(pipe):
    """evaluate_model(n_per_task=10**18) made prompts for ever (eval --n stops at 10000, --candidates at 256)."""
    from t2i_cli.world.evaluate import evaluate_model

    with pytest.raises(ValueError, match=r"^n_per_task must be at most 10000, got 10001$"):
        evaluate_model(pipe, None, n_per_task=10_001, seed=0)
    with pytest.raises(ValueError, match=r"^candidates must be at most 256, got a whole number of 5,001 digits$"):
        evaluate_model(pipe, None, n_per_task=1, seed=0, candidates=HUGE)


def test_a_refusal_says_a_number_of_thousands_of_digits_by_its_length():
    """check_count_and_seed(1, 10**5000), open_source(D, 10**5000) and TrainConfig(steps=10**5000).check() raised
    Python's "Exceeds the limit (4300 digits) for integer string conversion" instead of t2i's refusal."""
    from t2i_cli.data import open_source
    from t2i_cli.errors import option, said_value
    from t2i_cli.pipeline import check_count_and_seed
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.train import TrainConfig

    assert said_value(HUGE) == "a whole number of 5,001 digits"
    assert said_value(-HUGE) == "a negative whole number of 5,001 digits"
    for k in (40, 41, 100, 4300, 4301):  # (the length exactly, at each power of ten and just below it)
        assert said_value(10**k) == f"a whole number of {k + 1:,} digits"
        assert said_value(10**k - 1) == (f"a whole number of {k:,} digits" if k > 40 else str(10**k - 1))
    assert said_value(7) == "7" and said_value("7") == "'7'" and said_value(1.5) == "1.5"
    assert option("seed", HUGE) == "seed=a whole number of 5,001 digits"
    with pytest.raises(UsageError, match=r"^seed must be a whole number in 0..2\*\*63-1, got a whole number of "
                                         r"5,001 digits$"):
        check_count_and_seed(1, HUGE)
    with pytest.raises(UsageError, match=r"^n must be a whole number of images, 1 or more, got a negative whole "
                                         r"number of 5,001 digits$"):
        check_count_and_seed(-HUGE, 0)
    with pytest.raises(UsageError, match=r"^side must be a whole number of pixels in 1..4096, got a whole number of "
                                         r"5,001 digits$"):
        open_source("world", HUGE)
    with pytest.raises(ValueError, match=r"^steps must be between 1 and \S+, got a whole number of 5,001 digits$"):
        TrainConfig("dvae", "world", steps=HUGE).check()
    with pytest.raises(ValueError, match=r"^lr must be a finite number above 0 and at most 1, got a whole number of "
                                         r"5,001 digits$"):
        TrainConfig("dvae", "world", lr=HUGE).check()  # (was math.isfinite's OverflowError)
    with pytest.raises(UsageError, match=r"^guidance must be a number within a float's range, got a whole number "
                                         r"of 5,001 digits$"):
        SamplingConfig(guidance=HUGE)  # (was float()'s OverflowError)
    with pytest.raises(UsageError, match=r"^jacobi must be in 0..64 \(0 = off\), got a whole number of 5,001 "
                                         r"digits$"):
        SamplingConfig(jacobi=HUGE)
    with pytest.raises(UsageError, match=r"^top_k must be in 0..\d+ \(0 = off\), got a whole number of 5,001 "
                                         r"digits$"):
        SamplingConfig(top_k=HUGE).check_vocab(64)
    from t2i_cli.errors import model_option
    from t2i_cli.image_prompt import check_keep_top
    from t2i_cli.models.dvae import DVAEConfig

    assert model_option("n_hid", HUGE) == "model={'n_hid': a whole number of 5,001 digits}"
    with pytest.raises(UsageError, match=r"got a whole number of 5,001 digits$"):
        check_keep_top(HUGE)
    with pytest.raises(ValueError, match=r"^pixel_eps must be at least 0 and below 0.5, got a whole number past a "
                                         r"float's range$"):
        DVAEConfig(pixel_eps=HUGE)  # (was math.isfinite's OverflowError)


def test_tinypngs_min_is_dropped_after_a_cameras_name_not_after_a_number_alone():
    """caption_of("30-min") was None (0.18.0: "30 min"), though the README drops "-min" after a number only after a
    camera's name; "IMG_1234-min-min" was "img 1234 min" and "bird-min-min" "bird min" (each pass of a tool adds
    its own suffix)."""
    from t2i_cli.name_captions import caption_of

    assert caption_of("30-min") == "30 min" and caption_of("5-min (1)") == "5 min"
    assert caption_of("30-min-min") == "30 min"
    assert caption_of("IMG_1234-min-min") is None and caption_of("IMG_1234-min-min (1)") is None
    assert caption_of("bird-min-min") == "bird" and caption_of("bird-removebg-preview-min") == "bird"
    assert caption_of("IMG_1234-min") is None and caption_of("2024-01-01-min") is None  # (as before)
    assert caption_of("workout-30-min") == "workout 30 min" and caption_of("park-ji-min") == "park ji min"
    assert caption_of("park-ji-min-min") == "park ji min"


def _aged(path: Path, data: bytes = b"x") -> Path:
    """path written and made two minutes old (past STALE_AFTER: as a killed run's temporary is found later)."""
    import os
    import time

    path.write_bytes(data)
    os.utime(path, (time.time() - 120, time.time() - 120))
    return path


def test_only_mkstemps_shape_is_taken_for_t2is_temporary_outside_picture_folders_too(tmp_path: Path):
    """In an --out folder, a run folder (its samples/ too) and rerank's best/, any .NAME.X.tmp was taken for one of
    t2i's temporaries and removed: a user's .a-red-bird-NNN.png.mine.tmp was lost. Only mkstemp's part of 8
    letters, digits or _ is t2i's now, as in a folder of pictures (data caption)."""
    from t2i_cli.cli import _pictures_folder
    from t2i_cli.files import _finished_temporary, temporary_of
    from t2i_cli.train import clean_stale_temporaries

    assert temporary_of(".a-red-bird-NNN.png.mine.tmp") is None
    assert temporary_of(".a-red-bird-NNN.png.k1ll3d_0.tmp") == "a-red-bird-NNN.png"
    out = tmp_path / "out"
    out.mkdir()
    mine = _aged(out / ".a-red-bird-NNN.png.mine.tmp", b"mine")
    killed = _aged(_finished_temporary(out / "a-red-bird-NNN.png", lambda t: t.write_bytes(b"png")))
    _pictures_folder(out, "--out")
    assert not killed.exists() and mine.read_bytes() == b"mine"
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    left = [_aged(run_dir / ".checkpoint.safetensors.x.tmp", b"mine"),
            _aged(run_dir / "samples" / ".step-4.png.backup.tmp", b"mine")]
    stale = [_aged(run_dir / ".checkpoint.safetensors.k1ll3d00.tmp"),
             _aged(run_dir / "samples" / ".step-4.png.abc_1234.tmp")]
    assert sorted(clean_stale_temporaries(run_dir)) == sorted(stale)
    assert all(p.read_bytes() == b"mine" for p in left)


def test_export_runs_from_python_names_its_arguments_not_the_commands_flags(tmp_path: Path):
    """export_runs([...], to) from Python said "--to W is a file", "--half stores ...: leave --half out" and "pass
    --force to replace it", flags a Python caller has none of; it names to, half=True and force=True there, and
    the command line's words are unchanged."""
    from conftest import one_line_failure, run
    from t2i_cli.train import export_runs

    tok = tmp_path / "tok"
    assert run("train", "--stage", "tokenizer", "--out", tok, "--preset", "tiny", "-q").exit_code == 0
    a_file = tmp_path / "w.txt"
    a_file.write_text("mine")
    with pytest.raises(UsageError, match=rf"^to {a_file} is a file; give the weights folder"):
        export_runs([tok], a_file)
    with pytest.raises(UsageError, match=r"^half=True stores models' float tensors in fp16, .*: pass half=False$"):
        export_runs([tok], tmp_path / "w", half=True)
    assert export_runs([tok], tmp_path / "w") == [tmp_path / "w" / "tokenizer.json"]
    (tmp_path / "w" / "tokenizer.json").write_text("{}")
    with pytest.raises(UsageError, match=r"already exists; pass force=True to replace it or export to another"):
        export_runs([tok], tmp_path / "w")
    line = one_line_failure(run("export", tok, "--to", tmp_path / "w"), 2)
    assert line.endswith("already exists; pass --force to replace it or export to another folder"), line
    line = one_line_failure(run("export", tok, "--to", tmp_path / "x", "--half"), 2)
    assert line.startswith("error: --half stores") and line.endswith(": leave --half out"), line
    assert one_line_failure(run("export", tok, "--to", a_file), 2).startswith(f"error: --to {a_file} is a file"), line
