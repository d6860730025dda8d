"""Session 44, hE: a user's journey on a new set of real pictures (game sprites, playing cards and scikit-image's
sample photos, bench/make_games_folder.py): defects found on the way, each with a test that fails without its fix."""

import json
from pathlib import Path

from PIL import Image

from conftest import run


def _pictures(folder: Path, n: int = 4) -> Path:
    folder.mkdir()
    for i in range(n):
        Image.new("RGB", (20, 20), (40 * i, 200 - 50 * i, 90)).save(folder / f"pic{i}.png")
        (folder / f"pic{i}.txt").write_text(f"a picture number {i}\n")
    return folder


def test_info_of_a_dvae_run_says_its_val_loss_is_pixel_l1_beside_the_training_l1(tmp_path: Path):
    """A dVAE's val_loss is pixel L1 whatever its --recon-loss, but `t2i info RUN/dvae` showed its logit_laplace
    training loss beside it unlabelled (`loss 0.7615`, `val_loss best 0.1717` on a folder of cards and sprites), as if
    validation were 4x better than training: the training pixel L1 is shown beside it, and both are named."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--sample-every", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    l1 = [r["recon_l1"] for r in rows if "recon_l1" in r][-1]
    said = " ".join(run("info", out).stdout.split())
    assert f"(logit_laplace; pixel L1 {l1:.4g}, the scale of val_loss)" in said, said
    assert "(pixel L1)" in said.split("val_loss", 1)[1], said
    data = json.loads(run("info", out, "--json").stdout)
    assert data["loss"]["recon_l1"] == l1 and data["loss"]["recon_loss"] == "logit_laplace"


def test_info_of_a_dvae_run_trained_on_l1_shows_no_second_l1(tmp_path: Path):
    """With --recon-loss l1 the loss is the pixel L1 already: nothing is added beside it."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--recon-loss", "l1", "--sample-every", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    said = " ".join(run("info", out).stdout.split())
    assert "the scale of val_loss" not in said and "(pixel L1)" in said, said


def test_info_of_a_whole_run_shows_the_dvaes_pixel_l1_beside_its_val_loss(tmp_path: Path):
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "all", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--sample-every", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    data = json.loads(run("info", out, "--json").stdout)
    l1 = data["stages"]["dvae"]["loss"]["recon_l1"]
    table = run("info", out).stdout
    row = next(line for line in table.splitlines() if "dvae" in line)
    assert ", L1" in row and "│ L1 " in row, table  # (the cells wrap at 80 columns: their first lines)
    assert f"{l1:.4g}" in table, table
    assert "L1" not in next(line for line in table.splitlines() if "transformer" in line)


def test_export_takes_out_as_every_other_command_does(tmp_path: Path):
    """`t2i export run/dvae ... --out w` (train, generate, vary, eval, data all write to --out) was "No such option:
    --out": --out names the weights folder, as --to does, and the two disagreeing are refused."""
    pics = _pictures(tmp_path / "pics")
    out = tmp_path / "run"
    r = run("train", "--stage", "dvae", "--data", pics, "--out", out, "--preset", "tiny", "--steps", "2",
            "--sample-every", "0", "--workers", "0", "--quiet")
    assert r.exit_code == 0, (r.stdout, r.stderr)
    r = run("export", out, "--out", tmp_path / "w")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "w" / "dvae.safetensors").is_file()
    r = run("export", out, "--out", tmp_path / "a", "--to", tmp_path / "b")
    assert r.exit_code == 2 and "disagree" in r.stderr and not (tmp_path / "a").exists()


def test_the_warning_of_captions_cut_at_the_text_length_names_one(tmp_path: Path, tiny_weights: Path):
    """Training the tiny preset on a folder of game sprites said "1 caption is longer than the text length (12
    tokens) and is cut to it" without saying which of 190 captions: it names the first one cut."""
    pics = tmp_path / "pics"
    pics.mkdir()
    long = "a gridworld median bottom tile of a frozen lake with a cracked hole in the ice beside a stool"
    for i, caption in enumerate(["a red bird", long, "a blue fish"]):
        Image.new("RGB", (16, 16), (60 * i, 90, 90)).save(pics / f"p{i}.png")
        (pics / f"p{i}.txt").write_text(caption + "\n")
    r = run("train", "--stage", "clip", "--preset", "tiny", "--tokenizer", tiny_weights, "--data", pics, "--steps",
            "1", "--batch-size", "2", "--workers", "0", "--device", "cpu", "-q", "--out", tmp_path / "run")
    assert r.exit_code == 0, r.stderr
    cut = [line for line in r.stderr.splitlines() if "longer than the text length" in line]
    assert len(cut) == 1 and f'cut to it: "{long[:80]}... ({len(long)} characters)"' in cut[0], r.stderr


def test_an_animated_picture_or_a_multi_page_tiff_trains_on_its_first_frame(tmp_path: Path):
    """What the README now says of a folder's animated pictures (scikit-image's 24-frame GIF, a multi-page TIFF),
    which it did not say: the first frame (page) alone is read, every later one left out."""
    from t2i_cli.data import open_source

    pics = tmp_path / "pics"
    pics.mkdir()
    frames = [Image.new("RGB", (24, 24), c) for c in [(250, 0, 0), (0, 250, 0), (0, 0, 250)]]
    frames[0].save(pics / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    frames[0].save(pics / "anim-apng.png", save_all=True, append_images=frames[1:], duration=100)
    frames[0].save(pics / "anim-webp.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    frames[0].save(pics / "pages.tif", save_all=True, append_images=frames[1:])
    for p in pics.iterdir():
        (pics / f"{p.stem}.txt").write_text("a red square\n")
    data = open_source(str(pics), 8)
    assert len(data) == 4 and not data.skipped
    for i in range(len(data)):
        img, _ = data[i]
        assert img[0].min() > 0.9 and img[1:].max() < 0.1, (data.file_of(i), img.mean((1, 2)))


def test_data_caption_passes_over_a_preview_sheet_written_in_the_folder_under_another_name(tmp_path: Path):
    """`t2i data preview games --out games/sheet.png` (warned: training counts it as without a caption), then the
    training warning's own hint, `t2i data caption games`, wrote games/sheet.txt "sheet": the next run trained on
    t2i's contact sheet of the folder. It is known by its PNG text, left without a caption and said."""
    pics = _pictures(tmp_path / "pics")
    r = run("data", "preview", pics, "--out", pics / "sheet.png")
    assert r.exit_code == 0 and (pics / "sheet.png").is_file(), r.stderr
    Image.new("RGB", (20, 20), (9, 9, 9)).save(pics / "red-bird.png")  # a picture of the user's to caption
    r = run("data", "caption", pics)
    assert r.exit_code == 0, r.stderr
    assert not (pics / "sheet.txt").exists() and (pics / "red-bird.txt").read_text() == "red bird\n"
    said = " ".join(r.stderr.split())
    assert f"1 contact sheet t2i wrote left without a caption (marked in its PNG text), e.g. {pics / 'sheet.png'}" \
        in said, said


def test_eval_data_says_how_many_codes_the_dvae_has_beside_those_used(tiny_weights: Path, tmp_path: Path):
    """`t2i eval --data games` said "dVAE codes used 227" without the codebook's size (1,000 in the default preset,
    64 in the tiny one): the row says "227 of 1,000", and --json holds n_codes beside codes_used."""
    pics = _pictures(tmp_path / "pics", 40)
    r = run("eval", "--data", pics, "--weights", tiny_weights, "--n", "2", "--draws", "1", "--json",
            tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    got = json.loads((tmp_path / "e.json").read_text())["dvae"]
    assert got["n_codes"] == 32 and 1 <= got["codes_used"] <= 32
    row = next(line for line in r.stdout.splitlines() if "dVAE codes used" in line)
    assert f"{got['codes_used']} of 32" in row, r.stdout
