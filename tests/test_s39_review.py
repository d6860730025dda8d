"""Session 39 review: `t2i data caption`'s and the CSV manifest's faults found in review, each pinned."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from conftest import run


def picture(path: Path, colour: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (16, 16), (colour % 256, 90, 200)).save(path)
    return path


def test_data_caption_of_pictures_whose_caption_files_training_leaves_out_is_not_no_pictures(tmp_path: Path):
    # a picture whose caption file is not UTF-8 has one all the same (never replaced): the command said "no
    # pictures under FOLDER ... give the folder that holds them" (exit 1)
    picture(tmp_path / "blue_car.png")
    (tmp_path / "blue_car.txt").write_bytes(b"caf\xe9 racer")
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0 and "no pictures" not in r.stderr
    assert "1 picture already captioned (left untouched)" in r.stderr and "nothing to write" in r.stdout
    assert (tmp_path / "blue_car.txt").read_bytes() == b"caf\xe9 racer"


def test_data_caption_of_a_folder_whose_pictures_are_all_in_one_it_cannot_read_names_it(tmp_path: Path, monkeypatch):
    # every picture in a sub-folder that cannot be listed (root lists any: failed here by hand): "no pictures under
    # FOLDER ... give the folder that holds them", the folder that cannot be read unsaid (it is, with pictures)
    from t2i_cli import data

    (tmp_path / "pics").mkdir()
    listed = data.files_under
    monkeypatch.setattr(data, "files_under", lambda folder: (lambda f, r, u: (f, r, [folder / "locked"]))(
        *listed(folder)))
    r = run("data", "caption", tmp_path / "pics")
    assert r.exit_code == 1 and "1 folder that cannot be read (permission?) left out, e.g. " in r.stderr
    assert str(tmp_path / "pics" / "locked") in r.stderr and "give the folder that holds them" not in r.stderr


def test_data_caption_beside_a_manifest_names_it_where_no_name_holds_words(tmp_path: Path):
    # a Hugging Face folder of camera names and its metadata.csv: "no caption to write ...; try --from folder", the
    # manifest whose captions these are unnamed (README: pictures beside a manifest are refused, naming it)
    picture(tmp_path / "IMG_0001.jpg")
    # (since session 41 the folder reads its metadata.csv: the picture has its caption; a .jsonl of another name
    # is still refused)
    (tmp_path / "metadata.csv").write_text("file_name,text\nIMG_0001.jpg,a red bird\n")
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 0 and "every picture" in r.stdout and "has a caption" in r.stdout, r.stdout
    (tmp_path / "metadata.csv").unlink()
    (tmp_path / "captions.jsonl").write_text('{"image": "IMG_0001.jpg", "caption": "a red bird"}\n')
    r = run("data", "caption", tmp_path)
    assert r.exit_code == 1 and "captions.jsonl" in r.stderr and "t2i train --stage all --data" in r.stderr
    assert not list(tmp_path.glob("*.txt"))


def test_from_a_data_preview_sheet_does_not_send_to_the_pictures_it_shows(tmp_path: Path):
    # "pass --from one of the images it shows": a data preview shows a data source's pictures, which carry no t2i
    # settings (--from of one of them is refused in turn)
    from t2i_cli.data import preview

    picture(tmp_path / "pics" / "red_bird.png")
    (tmp_path / "pics" / "red_bird.txt").write_text("a red bird\n")
    sheet = preview(str(tmp_path / "pics"), tmp_path / "preview.png", n=1, side=16)
    r = run("generate", "--from", sheet, "--out", tmp_path / "out")
    assert r.exit_code == 1 and "is a contact sheet t2i wrote (preview)" in r.stderr
    assert "one of the images it shows" not in r.stderr and "t2i generate" in r.stderr


def test_a_metadata_csv_without_caption_columns_is_no_manifest_beside_the_pictures(tmp_path: Path):
    # a Hugging Face classification folder's metadata.csv (file_name, label) holds no captions: data caption refused
    # ("a manifest whose captions training reads"), and training sent to it, which then is refused for its columns
    picture(tmp_path / "red_bird.png")
    picture(tmp_path / "blue_car.png", 80)
    (tmp_path / "metadata.csv").write_text("file_name,label\nred_bird.png,0\nblue_car.png,1\n")
    dry = run("data", "caption", tmp_path, "--dry-run")
    assert dry.exit_code == 0 and "metadata.csv" not in dry.stderr and "red_bird.txt: red bird" in dry.stdout
    preview = run("data", "preview", tmp_path, "--out", tmp_path.parent / f"{tmp_path.name}-sheet.png")
    assert preview.exit_code == 1 and "as the source" not in preview.stderr and "t2i data caption" in preview.stderr
    # (since session 42 named as what it is: tests/test_s42_imagefolder.py)
    assert f"{tmp_path / 'metadata.csv'} (its columns: 'file_name', 'label') has no caption column" in preview.stderr
    # (one that names the columns is read, since session 41: red_bird.png has its caption, blue_car.png none)
    (tmp_path / "metadata.csv").write_text("File_Name,Text\nred_bird.png,a red bird\n")
    dry = run("data", "caption", tmp_path, "--dry-run")
    assert dry.exit_code == 0 and "red_bird.txt" not in dry.stdout and "blue_car.txt: blue car" in dry.stdout
