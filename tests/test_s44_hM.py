"""Session 44, hM: a newcomer follows the README word for word."""

from PIL import Image

from conftest import run
from test_s42_journey import _pictures


def test_a_stage_without_data_beside_a_tokenizer_of_your_pictures_says_it_trains_on_the_world(tmp_path):
    """README's torchrun line (`train --stage transformer --dvae runs/dvae --tokenizer runs/tok`) had no --data:
    after a tokenizer and dVAE learned from my_images/, the stage trained on the procedural world (--data's
    default), unsaid. Now the start warns, naming the pictures the run it was given learned from and the --data
    to give; with that --data the warning is gone."""
    pics = _pictures(tmp_path / "my pictures")
    tok = tmp_path / "tok"
    assert run("train", "--stage", "tokenizer", "--data", pics, "--preset", "tiny", "--out", tok).exit_code == 0
    r = run("train", "--stage", "clip", "--tokenizer", tok, "--preset", "tiny", "--steps", "1", "--sample-every", "0",
            "--out", tmp_path / "clip-world")
    assert r.exit_code == 0, r.output
    said = [line for line in r.stderr.splitlines() if "learned from" in line]
    assert said == [f"warning: --tokenizer {tok} learned from {pics.resolve()}, but this run trains on world:train "
                    f"(the procedural world, where --data left out trains); give --data '{pics.resolve()}' to train "
                    f"on those pictures"], r.stderr
    r = run("train", "--stage", "clip", "--tokenizer", tok, "--data", pics, "--preset", "tiny", "--steps", "1",
            "--sample-every", "0", "--out", tmp_path / "clip-mine")
    assert r.exit_code == 0, r.output
    assert "learned from" not in r.stderr, r.stderr


def test_data_caption_ends_with_a_train_command_that_runs_as_pasted(tmp_path, monkeypatch):
    """`t2i data caption FOLDER` ended `then train with: t2i train --data FOLDER`, which train refuses ("give --stage
    and --out for a new run"): the newcomer's next step failed. It now names a whole run, --stage all with an --out
    named after the folder, and that very command trains (tiny preset, two steps, added to keep it short)."""
    import shlex

    monkeypatch.chdir(tmp_path)
    pics = tmp_path / "my icons"
    pics.mkdir()
    for i, name in enumerate(("red-bird.png", "blue_fish.png", "GreenCat.png")):
        Image.new("RGB", (20, 20), (80 * i, 200 - 60 * i, 90)).save(pics / name)
    r = run("data", "caption", pics)
    assert r.exit_code == 0, r.output
    said = r.stdout.strip().split("then train with: ", 1)[1]
    assert shlex.split(said) == ["t2i", "train", "--stage", "all", "--data", str(pics), "--out", "runs/my icons"], said
    r = run(*shlex.split(said)[1:], "--preset", "tiny", "--steps", "2", "--sample-every", "0")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "runs" / "my icons" / "weights" / "transformer.safetensors").is_file()


def test_a_missing_weights_folder_points_to_the_shipped_one_not_to_make_weights(tmp_path, monkeypatch):
    """README's `t2i eval --weights weights`, typed outside the checkout, said "weights folder weights does not exist;
    pass --weights DIR or run `make weights`": an hour of training into runs/default/weights, after which the same
    command still found nothing. The shipped weights are the default: the line now says to leave --weights out, and
    names them."""
    from t2i_cli.cli import REPO_WEIGHTS

    monkeypatch.chdir(tmp_path)
    r = run("generate", "a red bird", "--weights", "weights")
    assert r.exit_code == 1, r.output
    line = r.stderr.strip()
    assert line == (f"error: weights folder weights does not exist; leave --weights out for the shipped weights "
                    f"({REPO_WEIGHTS}), or pass --weights DIR, a folder `t2i export` or `t2i train --stage all` "
                    f"wrote"), line
    assert not (tmp_path / "outputs").exists()
