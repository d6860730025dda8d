"""Session 47, hC: files, recipe and Python-API leftovers (one helper for a name's bytes and 0.18.0's record window,
one walk of an exception's context chain, a whole run's model check from Python, data_eval's one bound, the
torch-free header read of image_vocab, a resume's model config judged as the run's own)."""

from __future__ import annotations

import types
from pathlib import Path

import pytest


# ------------------------------------------------------------------- 1. one helper for a name's bytes and its window
def test_a_name_is_measured_in_the_bytes_the_file_system_holds():
    from t2i_cli.files import name_bytes

    assert name_bytes("bird.txt") == 8
    assert name_bytes("\U0001F426") == 4  # a 4-byte emoji
    assert name_bytes("caf\udce9") == 4  # a byte that is not UTF-8 (Latin-1's é), as Python's surrogate escape: one


def test_0_18_0s_record_window_is_61_to_64_bytes_for_both_cleanups(tmp_path: Path):
    """files.recorded_by_018 and name_captions' caption cleanup tested the same 61-64 byte window each in its own
    words: one helper (head_of_long_name) says it for both. A head of 60 bytes is no 0.18.0 record (cut_to_bytes
    leaves at most 3 bytes of 64 unused); one of 61 is, where a picture's caption is that long."""
    from t2i_cli.files import cut_to_bytes, head_of_long_name, recorded_by_018
    from t2i_cli.name_captions import _caption_name

    assert [head_of_long_name("a" * n) for n in (60, 61, 64, 65)] == [False, True, True, False]
    stem = "a" * 57 + "\U0001F426" * 4  # 57 + 16 bytes: its first 64 bytes are whole characters up to 61
    txt = f"{stem}.txt"
    record = cut_to_bytes(txt, 64)
    assert len(record.encode()) == 61 and recorded_by_018(record, [txt])
    (tmp_path / f"{stem}.png").write_bytes(b"")
    assert _caption_name(tmp_path, record)
    assert not _caption_name(tmp_path, record[:-1] + "b")  # a name of the window that is no picture's caption's


# ------------------------------------------------------------------------------ 3. one walk of the context chain
def test_raised_while_walks_the_context_chain_and_ends_where_it_loops():
    from t2i_cli.cli import _in_context
    from t2i_cli.errors import raised_while

    first, second, stop = ValueError("first"), OSError("second"), KeyboardInterrupt()
    stop.__context__, second.__context__, first.__context__ = second, first, second  # first -> second loops
    assert list(raised_while(stop)) == [second, first]
    assert _in_context(stop, lambda e: isinstance(e, ValueError)) is first
    assert _in_context(stop, lambda e: isinstance(e, KeyError)) is None
    assert list(raised_while(ValueError())) == []


def test_a_whole_runs_stop_gives_each_error_it_cut_into_the_whole_runs_note(tmp_path: Path, monkeypatch):
    """recipe.train_all's own walk of a stop's context (now errors.raised_while): each error the stop cut into that
    carries a stage's saved note gets the whole run's."""
    from t2i_cli import recipe
    from t2i_cli.errors import T2IError
    from t2i_cli.train import RUN_CONFIG, Interrupted

    run_dir = tmp_path / "run"
    (run_dir / "dvae").mkdir(parents=True)
    (run_dir / "dvae" / RUN_CONFIG).write_text("{}")
    cut = T2IError("lost the connection to rank 1")
    cut.saved_note, cut.saved_step = "the dvae stage's note", 7
    cut.__notes__ = [cut.saved_note]

    def stages(*args, **kwargs):
        try:
            raise cut
        except T2IError:
            raise KeyboardInterrupt from None  # (from None: __context__ is kept, as a stop that cuts in keeps it)

    monkeypatch.setattr(recipe, "_stages", stages)
    monkeypatch.setattr(recipe, "check_whole_run_models", lambda configs, started: None)
    monkeypatch.setattr(recipe, "plan_settings", lambda run_dir, settings: settings)
    monkeypatch.setattr(recipe, "check_whole_run_folder", lambda run_dir: None)
    with pytest.raises(Interrupted):
        recipe.train_all(run_dir, {"data": "world:train"}, lambda s, r: types.SimpleNamespace(stage=s), "cpu")
    assert cut.__notes__ != ["the dvae stage's note"] and str(run_dir) in cut.__notes__[0]
    assert "of the dvae stage" in cut.__notes__[0]


# ---------------------------------------------------------------- 4. a whole run from Python checks every model first
def _whole_run_configs(model: list[str]):
    from t2i_cli.train_options import stage_config_of_all

    settings = {"data": "world:train", "preset": "tiny", "model": model}
    return lambda stage, root: stage_config_of_all(stage, root, settings, {"workers": None})


def test_a_whole_run_from_python_refuses_a_later_stages_model_before_its_first_stage_trains(tmp_path: Path,
                                                                                            monkeypatch):
    """recipe.train_all from Python with a transformer n_head that does not divide its width: the tokenizer and
    dVAE stages trained (a stage each, minutes to hours) before the transformer's start refused it; the command
    line's whole run refused it before anything ran (stages.check_whole_run_models). Now Python's too, in the
    same words, and nothing is trained or written."""
    from t2i_cli import recipe
    from t2i_cli.errors import UsageError

    trained: list[str] = []
    monkeypatch.setattr(recipe, "run_stage", lambda cfg, sub, **kw: trained.append(cfg.stage) or {})
    run_dir = tmp_path / "run"
    with pytest.raises(UsageError, match=r"^cannot build the transformer model from these settings: n_embd 32 must "
                                         r"be a multiple of n_head 3$"):
        recipe.train_all(run_dir, {"data": "world:train"}, _whole_run_configs(["transformer.n_head=3"]), "cpu")
    assert trained == [] and not run_dir.exists()


def test_a_whole_run_from_python_refuses_what_a_new_dvae_must_not_train(tmp_path: Path, monkeypatch):
    """check_whole_run_models also refuses what a new run must not train (an FSQ channel of 2 levels) for a stage
    not yet begun: from Python too, before the tokenizer stage."""
    from t2i_cli import recipe
    from t2i_cli.errors import UsageError

    trained: list[str] = []
    monkeypatch.setattr(recipe, "run_stage", lambda cfg, sub, **kw: trained.append(cfg.stage) or {})
    with pytest.raises(UsageError, match="FSQ needs 3 or more levels per channel"):
        recipe.train_all(tmp_path / "run", {"data": "world:train"}, _whole_run_configs(["dvae.fsq_levels=4,4,2"]),
                         "cpu")
    assert trained == []


# ------------------------------------------------------------------------ 5. evaluate_data's n x draws, as eval's
class _Untouched:
    """A pipeline stand-in that fails the test when anything of it is read: the refusal comes first."""

    def __getattr__(self, name: str):
        raise LookupError(f"the pipeline's {name} was read")


def test_evaluate_data_bounds_n_times_draws_as_eval_does():
    """`t2i eval --data world:val --n 10000 --draws 16` is refused ("--n x --draws at most 10000"); from Python
    evaluate_data(pipe, "world:val", n=10000, draws=16) drew 160,000 images. Now refused in Python's keywords,
    before the weights are read; n x draws of exactly 10,000 goes on."""
    from t2i_cli.data_eval import evaluate_data

    with pytest.raises(ValueError, match=r"^draws must be in 1\.\.16, with n x draws at most 10000; got draws=16 "
                                         r"and n=10000$"):
        evaluate_data(_Untouched(), "world:val", n=10000, seed=0, draws=16)
    with pytest.raises(ValueError, match="got draws=2 and n=5001"):
        evaluate_data(_Untouched(), "world:val", n=5001, seed=0, draws=2)
    with pytest.raises(LookupError, match="bundle"):  # (within the bound: it goes on to the weights)
        evaluate_data(_Untouched(), "world:val", n=625, seed=0, draws=16)


# -------------------------------------------------------- 6. a transformer header's image_vocab, read before the load
def _with_image_vocab(path: Path, value: str) -> Path:
    """path (a t2i model file) with its config's image_vocab written as the JSON text value (the tensors kept)."""
    import json

    data = path.read_bytes()
    size = int.from_bytes(data[:8], "little")
    head = json.loads(data[8:8 + size])
    meta = json.loads(head["__metadata__"]["t2i"])
    config = json.loads(meta["config"])
    text = json.dumps(config).replace(f'"image_vocab": {config["image_vocab"]}', f'"image_vocab": {value}')
    assert text != json.dumps(config)
    head["__metadata__"]["t2i"] = json.dumps(meta | {"config": text})
    raw = json.dumps(head).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + size:])
    return path


def test_the_torch_free_header_read_takes_no_whole_number_its_load_refuses(tiny_weights: Path):
    """files.header_config (generate's codebook size before torch loads) took image_vocab 10**400, and --top-p 0.5
    times it overflowed a float. Now a config holding a whole number below 0 or above MAX_DIM is None (the load
    says why), as weights.check_budget refuses it."""
    from t2i_cli.files import MAX_DIM, header_config

    path = tiny_weights / "transformer.safetensors"
    assert header_config(path, "transformer")["image_vocab"] == 32
    for value in ("1" + "0" * 400, str(MAX_DIM + 1), "-1"):
        assert header_config(_with_image_vocab(path, value), "transformer") is None, value
    assert header_config(_with_image_vocab(path, str(MAX_DIM)), "transformer")["image_vocab"] == MAX_DIM


@pytest.mark.parametrize("value, said", [("1" + "0" * 400, "image_vocab is a whole number of 401 digits, above "
                                                            "1048576, the largest dimension t2i builds"),
                                         ("true", "image_vocab is true, not an integer")])
@pytest.mark.parametrize("source", ["prompt", "prompts"])
def test_a_hostile_codebook_size_is_said_as_the_load_says_it_before_a_greedy_top_p_check(tiny_weights: Path,
                                                                                         tmp_path: Path, value: str,
                                                                                         said: str, source: str):
    """`generate "a red bird" --top-p 0.5 --n 2` with weights whose transformer header says image_vocab 10**400:
    "internal error: OverflowError: int too large to convert to float" (weights.file_config took it unchecked,
    and the greedy --top-p check multiplied it); image_vocab true was read as a codebook of True codes ("a --top-p
    at or below 1/True, this model's True codes"). Now the load's own line, before anything is drawn."""
    from conftest import one_line_failure, run

    _with_image_vocab(tiny_weights / "transformer.safetensors", value)
    prompt = ["a red bird"] if source == "prompt" else ["--prompts", tmp_path / "p.txt"]
    (tmp_path / "p.txt").write_text("a red bird\n")
    line = one_line_failure(run("generate", *prompt, "--weights", tiny_weights, "--top-p", "0.5", "--n", "2",
                                "--out", tmp_path / "out"))
    assert line == f"error: {tiny_weights / 'transformer.safetensors'} carries an unusable transformer config " \
                   f"({said}); re-export it"
    assert not (tmp_path / "out").exists()


# ------------------------------------------------- 2. a resume's model settings are judged as its run's file holds them
@pytest.fixture(scope="module")
def tiny_dvae_run(tmp_path_factory) -> Path:
    """A finished two-step dVAE run (the tiny preset), as `t2i train` leaves it."""
    from conftest import run

    run_dir = tmp_path_factory.mktemp("runs") / "dvae"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--data", "world", "--out", run_dir, "--steps", "2",
            "--batch-size", "2", "--quiet")
    assert r.exit_code == 0, r.stderr
    return run_dir


@pytest.mark.parametrize("value, said", [("true", "n_hid is true, not an integer"),
                                         ("8.0", "n_hid is 8.0, not an integer"),
                                         ('"8"', 'n_hid is "8", not an integer')])
def test_a_resume_says_its_run_files_model_setting_in_the_files_words(tiny_dvae_run: Path, tmp_path: Path,
                                                                       value: str, said: str):
    """A run whose train_config.json says "n_hid": true, resumed from the command line: "cannot build the dvae
    model from these settings: n_hid is True, not an integer" (check_budget(python=True) judged the file's value
    as settings a Python caller gave, and the command gave none). The bounds are one for both (check_budget's),
    so nothing a run passed at its start is refused at its resume; but the file's value is now said as the file
    holds it, naming the file, as any other damage of it is."""
    import shutil

    from conftest import one_line_failure, run
    from t2i_cli.train import RUN_CONFIG

    run_dir = tmp_path / "dvae"
    shutil.copytree(tiny_dvae_run, run_dir)
    config = run_dir / RUN_CONFIG
    text = config.read_text()
    config.write_text(text.replace('"n_hid": 8', f'"n_hid": {value}'))
    assert config.read_text() != text
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "4"), code=2)
    assert line == f"error: {config} is not a readable run config ({said}); the run cannot be resumed"


def test_a_resume_from_python_of_a_run_the_command_line_started_is_judged_by_the_same_bounds(tiny_dvae_run: Path,
                                                                                              tmp_path: Path):
    """The run the command line started resumes from Python (train.read_run_config, steps extended): no bound of
    the Python API refuses what the command line took."""
    import dataclasses
    import shutil

    from t2i_cli.stages import run_stage
    from t2i_cli.train import read_run_config

    run_dir = tmp_path / "dvae"
    shutil.copytree(tiny_dvae_run, run_dir)
    cfg = dataclasses.replace(read_run_config(run_dir), steps=3)
    assert run_stage(cfg, run_dir, resume=True, device="cpu")["step"] == 3
