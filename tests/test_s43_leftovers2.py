"""Session 43's leftovers from the attackers (helper hL), each test failing without its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import run
from t2i_cli.name_captions import caption_of


def _picture(path: Path, shade: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (shade % 256, 90, 200)).save(path)
    return path


@pytest.mark.parametrize(("name", "caption"), [
    ("red_FF0000", "red"), ("bg-1e90ff", "bg"), ("swatch #00ff00", "swatch"), ("mug_c0ffee", "mug"),
    ("report_2024_Q1", "report 2024 q1"), ("Q3_sales", "q3 sales"),
    # ShareX's ids with three letters of a case in a row
    ("chrome_hFLOv2mpbU", None), ("chrome_BuNO6n9JEC", None), ("chrome_9n4dte2et6", None),
])
def test_caption_of_colour_codes_quarters_and_random_ids(name: str, caption: str | None):
    """A colour's code is no word ("red_FF0000" was "red ff"), a quarter is one ("report 2024 q"), and a random id
    of ShareX's is dropped though three letters of a case stand in a row in it ("chrome 6n gisi wg nz")."""
    expected = caption or "chrome"
    assert caption_of(name) == expected


@pytest.mark.parametrize(("name", "caption"), [
    ("bead12", "bead"), ("abc123", "abc"), ("facade", "facade"), ("iPhone15ProMax", "i phone 15 pro max"),
    ("3DsMax2024", "3 ds max"), ("LaTeXDoc", "la te x doc"), ("F1Car2024", "f 1 car"), ("Q1", None),
    ("chrome_5gT8kLm2Qp", "chrome"), ("R2D2Robot", "r 2d 2 robot"),
])
def test_caption_of_keeps_words_beside_the_new_rules(name: str, caption: str | None):
    assert caption_of(name) == caption


def test_manifest_network_path_file_url_and_null_captions(tmp_path: Path):
    """A manifest's row naming a Windows network path was told "write /" (its picture then a folder //server outside
    the manifest's); a file:// URL "download them"; a caption list holding null left the whole line out."""
    ds = tmp_path / "ds"
    for i, name in enumerate("abcd"):
        _picture(ds / f"{name}.png", 40 * i)
    rows = [{"file_name": "a.png", "text": ["a red bird", None]}, {"file_name": "d.png", "text": [None, "a cat"]},
            {"file_name": "\\\\server\\share\\b.png", "text": "a blue fish"},
            {"file_name": (ds / "c.png").as_uri(), "text": "a green cat"}]
    (ds / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    r = run("data", "preview", ds, "--out", tmp_path / "p.png", "--list-skipped")
    assert r.exit_code == 0, r.stderr
    assert "using 2" in r.stderr, r.stderr  # a.png and d.png, their null captions dropped
    assert "a Windows network path" in r.stderr and "write /" not in r.stderr, r.stderr
    assert "by a file:// URL (a path written as a URL: write the path itself" in r.stderr, r.stderr
    assert "download them" not in r.stderr, r.stderr


def test_manifest_above_not_utf8_is_said(tmp_path: Path):
    """A metadata.csv above the folder given, naming its pictures, saved as Latin-1: passed over unsaid, where one
    in the folder is refused as not UTF-8."""
    ds = tmp_path / "ds"
    _picture(ds / "train" / "IMG_0001.png", 1)
    _picture(ds / "train" / "IMG_0002.png", 2)
    (ds / "metadata.csv").write_bytes("file_name,text\ntrain/IMG_0001.png,un café rouge\n"
                                      "train/IMG_0002.png,un oiseau\n".encode("latin-1"))
    r = run("data", "preview", ds / "train", "--out", tmp_path / "p.png")
    assert r.exit_code != 0
    assert f"{ds / 'metadata.csv'} names 2 of the pictures here without a caption but is not UTF-8" in r.stderr, \
        r.stderr
    assert f"then give {ds} as the source" in r.stderr, r.stderr
    r = run("data", "caption", ds / "train", "--dry-run")
    assert "is not UTF-8" in r.stderr and "2 pictures already captioned" in r.stderr, r.stderr


def test_train_names_its_data_as_typed(tmp_path: Path, monkeypatch):
    """A new run's warnings and refusals named its --data by the path it records ("/home/me/sub/../ds/a.png"),
    where `t2i data preview` names it as typed ("../ds/a.png"); the run still records the absolute path."""
    ds = tmp_path / "ds"
    for i in range(4):
        _picture(ds / f"p{i}.png", 40 * i)
        (ds / f"p{i}.txt").write_text(f"a red bird {i}", encoding="utf-8")
    _picture(ds / "nocap.png", 250)
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    r = run("train", "--stage", "tokenizer", "--preset", "tiny", "--data", "../ds", "--out", "../run")
    assert r.exit_code == 0, r.stderr
    assert "1 image without .txt caption: ../ds/nocap.png" in r.stderr, r.stderr
    assert "t2i data caption ../ds " in r.stderr and str(tmp_path) not in r.stderr, r.stderr
    recorded = json.loads((tmp_path / "run" / "train_config.json").read_text(encoding="utf-8"))["data"]
    assert recorded == str(tmp_path / "sub" / ".." / "ds")  # (what a resume from elsewhere reads)
    r = run("train", "--stage", "tokenizer", "--preset", "tiny", "--data", "../empty", "--out", "../run2")
    assert r.exit_code == 1 and "under ../empty;" in r.stderr, r.stderr


def test_info_of_a_weights_folder_of_some_models_describes_them(tiny_weights, tmp_path: Path):
    """`t2i info DIR` of a folder holding a dVAE alone (`t2i export DVAE_RUN --to DIR`), or some of the models,
    was refused naming one file missing ("has no tokenizer.json"); it describes what is there now and says what
    generate lacks."""
    import shutil

    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tiny_weights / "dvae.safetensors", alone)
    r = run("info", alone, "--json")
    assert r.exit_code == 0, r.stderr
    info = json.loads(r.stdout)
    assert set(info["models"]) == {"dvae"} and info["models"]["dvae"]["parameters"] > 0, info
    assert info["missing"] == ["tokenizer.json", "transformer.safetensors"] and info["identity"] is None, info
    assert "t2i export TRANSFORMER_RUN" in info["next"], info
    some = tmp_path / "some"
    some.mkdir()
    for name in ("tokenizer.json", "dvae.safetensors", "clip.safetensors"):
        shutil.copy(tiny_weights / name, some)
    r = run("info", some)
    assert r.exit_code == 0, r.stderr
    assert "incomplete: no transformer.safetensors" in r.stdout and "clip" in r.stdout, r.stdout
    assert "missing   transformer.safetensors" in r.stdout, r.stdout
    complete = json.loads(run("info", tiny_weights, "--json").stdout)
    assert complete["missing"] == [] and complete["identity"], complete
