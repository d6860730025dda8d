"""`t2i eval --images DIR`: every image the judge scored (or `--data` drew) kept as a PNG a user can look at and
redraw, named by seed, task, prompt and verdict, with the judge's checks in its text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import build_tiny_folder, one_line_failure, run
from t2i_cli.world.tasks import TASKS


def eval_text(path: Path) -> dict:
    return json.loads(Image.open(path).text["t2i_eval"])


def test_eval_images_keeps_each_judged_image_with_its_verdict(tiny_weights: Path, tmp_path: Path):
    out = tmp_path / "judged"
    (out).mkdir()
    (out / "mine.txt").write_text("a user's file\n")
    r = run("eval", "--weights", tiny_weights, "--n", "2", "--candidates", "2", "--seed", "3", "--images", out,
            "--json", tmp_path / "e.json", "-q", "--threads", "1")
    assert r.exit_code == 0, r.stderr
    assert (out / "mine.txt").read_text() == "a user's file\n"  # kept
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 * len(TASKS)
    result = json.loads((tmp_path / "e.json").read_text())
    passed = Counter()
    for p in pngs:
        said = eval_text(p)
        verdict = "pass" if said["passed"] else "fail"
        assert p.name == f"seed3-{said['task']}-{said['prompt_index']:03d}-{verdict}-000.png"
        assert said["eval_seed"] == 3 and said["passed"] == all(said["checks"].values())
        assert set(said["checks"]) == set(result["tasks"][said["task"]]["checks"])
        passed[said["task"]] += said["passed"]
        text = Image.open(p).text
        assert text["n"] == "2" and text["clip_rank"] == "1"  # the best of 2, as generate records it
    # the files say what the table says
    assert {t: passed[t] for t in TASKS} == {t: result["tasks"][t]["passed"] for t in TASKS}
    # each is generate's own PNG: `generate --from` redraws it (the same seed, n and index)
    first = pngs[0]
    r = run("generate", "--from", first, "--weights", tiny_weights, "--out", tmp_path / "again", "-q",
            "--threads", "1")
    assert r.exit_code == 0, r.stderr
    again = np.asarray(Image.open(r.stdout.strip().splitlines()[-1]), dtype=int)
    assert np.abs(again - np.asarray(Image.open(first), dtype=int)).max() <= 1


def test_eval_data_images_keeps_every_draw_of_every_caption(tiny_weights: Path, tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(60):  # 3 held out for validation
        Image.new("RGB", (16, 16), (i * 4, 90, 200 - i * 3)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text(["a red bird", "two green cats"][i % 2] + "\n")
    out = tmp_path / "drawn"
    r = run("eval", "--data", data, "--n", "2", "--draws", "3", "--weights", tiny_weights, "--images", out, "-q",
            "--threads", "1", "--json", tmp_path / "e.json")
    assert r.exit_code == 0, r.stderr
    names = sorted(p.name for p in out.glob("*.png"))
    drawn = [f"seed0-val-{i:03d}-{k:03d}.png" for i in range(2) for k in range(3)]
    assert names == sorted(drawn + [f"seed0-val-{i:03d}-{kind}-000.png" for i in range(2) for kind in ("dvae", "real")])
    for name in drawn:
        text = Image.open(out / name).text
        said = json.loads(text["t2i_eval"])
        assert said == {"data": str(data), "eval_seed": 0, "caption_index": int(name[10:13]), "picture": "drawn"}
        assert text["n"] == "3" and text["index"] == str(int(name[14:17]))
    assert len({Image.open(out / n).text["prompt"] for n in names}) >= 1
    check_real_pictures(out, data, json.loads((tmp_path / "e.json").read_text())["dvae"]["psnr"])
    # weights without a CLIP draw nothing for --data: --images keeps the val pictures and their reconstructions
    bare = build_tiny_folder(tmp_path / "bare", with_clip=False)
    r = run("eval", "--data", data, "--n", "2", "--weights", bare, "--images", tmp_path / "real", "-q",
            "--json", tmp_path / "bare.json")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        f"seed0-val-{i:03d}-{kind}-000.png" for i in range(2) for kind in ("dvae", "real")]
    check_real_pictures(tmp_path / "real", data, json.loads((tmp_path / "bare.json").read_text())["dvae"]["psnr"])


def check_real_pictures(out: Path, data: Path, table_psnr: float) -> None:
    """Each val picture kept is the data's own picture (16 x 16, the dVAE's side: nothing to crop), with its
    caption; beside it the dVAE's reconstruction, whose recorded PSNR is the two PNGs' and averages to the
    table's."""
    recorded = []
    for i in range(2):
        real = Image.open(out / f"seed0-val-{i:03d}-real-000.png")
        recon = Image.open(out / f"seed0-val-{i:03d}-dvae-000.png")
        said = json.loads(real.text["t2i_eval"])
        assert said == {"data": str(data), "eval_seed": 0, "caption_index": i, "picture": "real"}
        pixels = np.asarray(real.convert("RGB"), dtype=float)
        source = [p for p in data.glob("*.png") if np.array_equal(np.asarray(Image.open(p).convert("RGB")), pixels)]
        assert len(source) == 1, i  # one of the data's pictures, pixel for pixel
        assert real.text["prompt"] == source[0].with_suffix(".txt").read_text().strip() == recon.text["prompt"]
        said = json.loads(recon.text["t2i_eval"])
        assert said["picture"] == "dvae" and said["caption_index"] == i
        mse = ((np.asarray(recon.convert("RGB"), dtype=float) - pixels) ** 2).mean() / 255 ** 2
        assert abs(10 * np.log10(1 / mse) - said["psnr"]) < 0.2, (said["psnr"], mse)  # (8-bit rounding)
        recorded.append(said["psnr"])
    assert abs(np.mean(recorded) - table_psnr) < 1e-3


def test_eval_images_that_names_a_file_is_one_line_before_any_work(tiny_weights: Path, tmp_path: Path):
    blocker = tmp_path / "file.png"
    blocker.write_bytes(b"not a folder")
    line = one_line_failure(run("eval", "--weights", tiny_weights, "--n", "1", "--candidates", "1", "--images",
                                blocker), 2)
    assert line == f"error: --images {blocker} exists and is not a folder; choose another with --images", line
    assert blocker.read_bytes() == b"not a folder"
