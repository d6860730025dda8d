"""Review of the second wave (session 44, hN): the defects found in its changes, each with the test that fails
without its fix."""

import pytest

from t2i_cli.cli import check_omp_env
from t2i_cli.errors import UsageError


@pytest.mark.parametrize("value", ["9223372036854775808", "18446744073709551617", "4,99999999999999999999",
                                   "1" + "0" * 5000])
def test_an_omp_num_threads_past_what_libgomp_reads_is_refused(monkeypatch, value):
    """libgomp reads each count as a C long: 2**63 and more it warns of in its own words and ignores (torch took
    one thread per core), as it does abc, which is refused; 5,000 digits made int() raise a ValueError."""
    monkeypatch.delenv("T2I_OMP", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    with pytest.raises(UsageError) as e:
        check_omp_env()
    assert str(e.value).startswith("OMP_NUM_THREADS ") and "more threads than OpenMP reads" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("value", ["9223372036854775807", "0004", " +2 ,1"])
def test_an_omp_num_threads_libgomp_reads_is_still_taken(monkeypatch, value):
    monkeypatch.delenv("T2I_OMP", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    check_omp_env()


@pytest.mark.parametrize("args", [["export", "RUN", "--out"], ["data", "world", "--out"], ["eval", "--images"]])
def test_a_path_option_last_without_a_value_is_said_to_need_one_not_to_be_empty(tmp_path, monkeypatch, args):
    """`t2i export RUN --out` (the value forgotten) was told '--out is given an empty file name', a value never
    typed: the empty-path check read the missing value as ''. Click's own line says what is wrong."""
    from conftest import one_line_failure, run

    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run(*args), 2)
    assert f"Option '{args[-1]}' requires an argument" in line and "empty file name" not in line
    assert list(tmp_path.iterdir()) == []


def test_an_empty_path_typed_is_still_refused_as_empty(tmp_path, monkeypatch):
    from conftest import one_line_failure, run

    monkeypatch.chdir(tmp_path)
    assert "--out is given an empty file name" in one_line_failure(run("export", "RUN", "--out="), 2)


def test_a_missing_weights_folder_is_not_told_to_leave_weights_out_where_t2i_weights_is_set(tmp_path, monkeypatch):
    """With T2I_WEIGHTS set, leaving --weights out loads T2I_WEIGHTS's folder: `--weights nope` was told 'leave
    --weights out for the shipped weights (...)', which loads another folder than the one it named."""
    from conftest import one_line_failure, run

    mine = tmp_path / "mine"
    mine.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("T2I_WEIGHTS", str(mine))
    line = one_line_failure(run("generate", "a red bird", "--weights", "nope"), 1)
    assert line == ("error: weights folder nope does not exist; pass --weights DIR, a folder `t2i export` or `t2i "
                    "train --stage all` wrote (`make weights` trains one into runs/default/weights)"), line
    assert not (tmp_path / "outputs").exists()


def test_a_long_series_of_years_keeps_them_though_a_long_series_without_its_start_is_a_counter(tmp_path):
    """"walk 100" .. "walk 121" became a counter's ("walk": one number in five measured from its smallest), and so
    did twelve years in a row, "calendar 2010" .. "calendar 2021": each picture's year, all it had to tell them
    apart, was dropped, all twelve captioned "calendar". Years name their pictures, as a product's versions do."""
    from conftest import run
    from test_s42_caption import _captions, _pictures

    pics = _pictures(tmp_path / "pics", *(f"calendar {y}" for y in range(2010, 2022)),
                     *(f"walk {i}" for i in range(100, 122)))
    r = run("data", "caption", pics, "-q")
    assert r.exit_code == 0, r.stderr
    got = _captions(pics)
    assert {k: v for k, v in got.items() if k.startswith("calendar")} == {
        f"calendar {y}": f"calendar {y}" for y in range(2010, 2022)}
    assert {k: v for k, v in got.items() if k.startswith("walk")} == {f"walk {i}": "walk" for i in range(100, 122)}


def test_a_clip_run_into_a_whole_run_stopped_in_its_clip_stage_is_not_told_of_stages_after_it(tmp_path, monkeypatch):
    """`t2i train --stage clip --out RUN`, RUN a whole run stopped in its CLIP stage, the last: the refusal said
    `t2i train --resume RUN` "finishes it and the stages after it", of which there are none; that resume finishes it
    and exports RUN/weights, which it says now (and does)."""
    import os
    import signal

    from PIL import Image

    from conftest import one_line_failure, run
    from t2i_cli.models.clip import Clip

    pics = tmp_path / "pics"
    pics.mkdir()
    for i in range(8):
        Image.new("RGB", (16, 16), (30 * i, 100, 200 - 20 * i)).save(pics / f"p{i:02d}.png")
        (pics / f"p{i:02d}.txt").write_text(f"picture {i}\n")
    real, calls = Clip.forward, {"n": 0}

    def stopped_forward(self, *a, **k):  # a Ctrl-C in the CLIP stage
        calls["n"] += 1
        if calls["n"] == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(Clip, "forward", stopped_forward)
    common = ("--preset", "tiny", "--workers", "0", "--device", "cpu", "-q")
    r = run("train", "--stage", "all", "--steps", "2", "--data", pics, "--out", tmp_path / "RUN", *common)
    assert r.exit_code == 130, r.stderr
    assert not (tmp_path / "RUN" / "weights").exists()
    monkeypatch.setattr(Clip, "forward", real)
    monkeypatch.chdir(tmp_path)
    line = one_line_failure(run("train", "--stage", "clip", "--data", pics, "--out", "RUN", *common), 2)
    assert "its clip stage stopped at step 0 of 2: t2i train --resume RUN finishes it and exports RUN/weights;" \
        in line and "stages after it" not in line, line
    r = run("train", "--resume", "RUN", *common)
    assert r.exit_code == 0 and (tmp_path / "RUN" / "weights" / "clip.safetensors").is_file(), r.stderr


def test_info_of_a_finished_stage_of_a_whole_run_training_its_next_stage_says_to_let_it_finish(tmp_path, monkeypatch):
    """`t2i info RUN/dvae` while the whole run trains its transformer (that stage's folder locked) said "t2i train
    --resume RUN goes on with them", a command the lock refuses; and RUN/transformer, finished while CLIP trains,
    "t2i train --resume RUN exports it". Each says the run is being trained: let it finish."""
    from conftest import run
    from t2i_cli.files import folder_lock
    from t2i_cli.models.clip import Clip
    from test_s44_hL import _pictures, _stop_at_first_forward

    pics = _pictures(tmp_path / "pics", *(f"p{i}" for i in range(8)))
    for i in range(8):
        (pics / f"p{i}.txt").write_text(f"picture {i}\n")
    monkeypatch.chdir(tmp_path)
    _stop_at_first_forward(monkeypatch, Clip)
    r = run("train", "--stage", "all", "--data", "pics", "--out", "RUN", "--preset", "tiny", "--steps", "2",
            "--workers", "0", "--device", "cpu", "-q")
    assert r.exit_code == 130 and "in the clip stage at step 0" in r.stderr, r.stderr
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    with folder_lock(tmp_path / "RUN" / "clip", "held by the test"):  # (the whole run's resume, training CLIP)
        for stage in ("dvae", "transformer"):
            r = run("info", "RUN/" + stage)
            assert r.exit_code == 0 and r.stdout.splitlines()[-1] == (
                "  next      a stage of the whole run RUN, whose clip stage is being trained now: let it finish"), \
                r.stdout
    r = run("info", "RUN/dvae")  # (the lock let go: the run is to be resumed)
    assert r.stdout.splitlines()[-1].endswith("t2i train --resume RUN goes on with them"), r.stdout


def test_a_whole_runs_weights_folder_holding_other_files_is_not_told_of_an_option_train_lacks(tmp_path, monkeypatch):
    """`t2i train --resume RUN`, RUN/weights holding the user's files and no weights: the run's export was refused
    "--to RUN/weights is not a weights folder ...; e.g. --to weights-weights", options `t2i train` does not have
    (the folder is the run's own). It says to move them out; they are kept, and the resume then exports."""
    from conftest import one_line_failure, run

    monkeypatch.chdir(tmp_path)
    common = ("--preset", "tiny", "--workers", "0", "--device", "cpu", "-q")
    r = run("train", "--stage", "all", "--steps", "2", "--out", "RUN", *common)
    assert r.exit_code == 0, r.stderr
    for f in (tmp_path / "RUN" / "weights").iterdir():
        f.unlink()
    (tmp_path / "RUN" / "weights" / "notes.txt").write_text("mine\n")
    line = one_line_failure(run("train", "--resume", "RUN", *common), 2)
    assert line == ("error: RUN/weights, the folder this run exports its weights to, holds no t2i weights but 1 other "
                    "file (e.g. notes.txt); move them out of it, then run the command again"), line
    assert (tmp_path / "RUN" / "weights" / "notes.txt").read_text() == "mine\n"
    (tmp_path / "RUN" / "weights" / "notes.txt").unlink()
    r = run("train", "--resume", "RUN", *common)
    assert r.exit_code == 0 and (tmp_path / "RUN" / "weights" / "transformer.safetensors").is_file(), r.stderr
