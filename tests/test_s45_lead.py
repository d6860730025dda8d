"""Session 45, the lead's mends after the closing read (each test fails without its mend)."""

from __future__ import annotations

import pytest

from conftest import one_line_failure, run
from test_reliability import TINY


def test_two_fsq_levels_are_refused_where_a_run_starts_not_where_a_config_is_built(tmp_path):
    """The 2-level FSQ refusal sat in train_config, the builder a resume's comparisons use too (a run that holds
    such a dVAE, trained before, was told its own --model 'FSQ needs 3 or more levels' on resume), and a run
    started from Python (run_stage) trained it unrefused. Now the builder builds it; a new run (the command line's,
    a whole run's stage not yet begun, run_stage without resume) refuses it."""
    from t2i_cli.errors import UsageError
    from t2i_cli.stages import apply_preset, run_stage
    from t2i_cli.train import TrainConfig
    from t2i_cli.train_options import train_config

    opts = {"model": ["fsq_levels=4,2,4"], "steps": None, "batch_size": None, "lr": None}
    cfg = train_config("dvae", "world", "tiny", {k: None for k in _opts()} | opts)  # (built: a resume compares it)
    assert list(cfg.model["fsq_levels"]) == [4, 2, 4]
    kw = apply_preset("dvae", "tiny", {"steps": 1, "model": {"fsq_levels": (4, 2, 4)}}, "world")
    with pytest.raises(UsageError, match="FSQ needs 3 or more levels per channel"):
        run_stage(TrainConfig(stage="dvae", data="world", **kw), tmp_path / "py")
    assert not (tmp_path / "py").exists()
    line = one_line_failure(run("train", "--stage", "all", "--out", tmp_path / "all", "--steps", "1", "--model",
                                "dvae.fsq_levels=4,2,4", "--preset", "tiny", "--workers", "0", "-q", "--device",
                                "cpu"), 2)
    assert "the dVAE's fsq_levels 4,2,4: FSQ needs 3 or more levels per channel" in line
    assert not (tmp_path / "all" / "tokenizer").exists()  # (refused before its first stage trained)
    line = one_line_failure(run("train", "--stage", "dvae", "--out", tmp_path / "cli", "--steps", "1", "--model",
                                "fsq_levels=4,2,4", *TINY), 2)
    assert "FSQ needs 3 or more levels per channel" in line and not (tmp_path / "cli").exists()


def _opts() -> list[str]:
    """The options t2i train passes train_config (its locals()), as the command line's defaults leave them."""
    import inspect

    import t2i_cli.cli as cli

    return [p for p in inspect.signature(cli.train).parameters]


def test_data_caption_looks_for_a_killed_runs_temporaries_once_a_folder(tmp_path, monkeypatch):
    """A data caption that writes looked for a killed run's caption temporaries twice in each picture folder (the
    command, then write_captions); once now, as where it writes nothing."""
    from PIL import Image

    import t2i_cli.name_captions as nc

    seen = []
    real = nc.remove_temporaries
    monkeypatch.setattr(nc, "remove_temporaries",
                        lambda folder, *a, **k: (seen.append(folder), real(folder, *a, **k))[1])
    for sub in ("a", "b"):
        (tmp_path / "pics" / sub).mkdir(parents=True)
        Image.new("RGB", (8, 8), (200, 0, 0)).save(tmp_path / "pics" / sub / "red-bird.png")
    r = run("data", "caption", tmp_path / "pics")
    assert r.exit_code == 0, r.stderr
    assert sorted(seen) == sorted({tmp_path / "pics" / "a", tmp_path / "pics" / "b"})
    seen.clear()
    r = run("data", "caption", tmp_path / "pics")  # every caption written: looked for once still
    assert r.exit_code == 0 and "nothing to write" in r.output, r.output + r.stderr
    assert sorted(seen) == sorted({tmp_path / "pics" / "a", tmp_path / "pics" / "b"})


def test_a_damaged_picture_of_a_format_vary_reads_is_not_said_to_be_a_folders_format(tmp_path):
    """vary reads a TGA by its path; a damaged one was said 'a TGA picture (t2i does not read TGA from a folder ...)'
    (the folder's reason), which is untrue of a file given by its path. An SVG is still named as t2i's unread."""
    from t2i_cli.errors import DataError
    from t2i_cli.images import load_rgb

    bad = tmp_path / "x.tga"
    bad.write_bytes(b"not a picture at all" * 4)
    with pytest.raises(DataError) as e:
        load_rgb(bad, 32)
    assert "from a folder" not in str(e.value) and "cannot read" in str(e.value)
    svg = tmp_path / "x.svg"
    svg.write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    with pytest.raises(DataError, match="t2i cannot read SVG: convert to JPEG or PNG"):
        load_rgb(svg, 32)


def test_world_eval_refuses_candidates_of_a_greedy_top_p_by_its_own_keyword(tiny_weights):
    """evaluate_model refused candidates of a greedy top_k 1 by its keyword, but a top_p at or below 1/codebook
    (greedy too, SamplingConfig.greedy) passed its check and was refused later, by draw_each, as 'n=4'."""
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.world.evaluate import evaluate_model

    pipe = TextToImage.from_folder(tiny_weights, device="cpu")
    with pytest.raises(UsageError, match=r"^candidates=4 with top_p=1e-09 draws 4 copies of one image"):
        evaluate_model(pipe, None, 1, 0, SamplingConfig(top_p=1e-9), candidates=4)
