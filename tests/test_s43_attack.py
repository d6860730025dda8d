"""Session 43, helper hI: today's new behaviour attacked as a user meets it (data caption's naming rules, a manifest
above the folder, ...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run
from t2i_cli import data
from t2i_cli.name_captions import caption_of
from test_s41_imagefolder import pictures


def test_a_classification_metadata_csv_above_the_folder_is_no_crash(tmp_path: Path):
    """ds/metadata.csv of "file_name,label" (Hugging Face's imagefolder of classes) above ds/train: `data caption
    ds/train` and `data preview ds/train` ended in "internal error: TypeError: unsupported operand type(s) for |=:
    'set' and 'int'" (the manifest above, of no caption column, was counted as the number 0). It holds no caption:
    the pictures are captioned by their names, and the folder is read."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png", "train/blue_fish.png")
    (ds / "metadata.csv").write_text("file_name,label\ntrain/red_bird.png,bird\n")
    r = run("data", "caption", ds / "train")
    assert r.exit_code == 0, (r.stdout, r.stderr, r.exception)
    assert (ds / "train" / "red_bird.txt").read_text() == "red bird\n"
    assert (ds / "train" / "blue_fish.txt").read_text() == "blue fish\n"
    got = data.open_source(str(ds / "train"), 16)
    assert sorted(got.captions_at(i)[0] for i in range(len(got))) == ["blue fish", "red bird"]


@pytest.mark.parametrize("name", ["Screenshot_20240501-103102_Instagram", "Screenshot_20240101-123456_Chrome",
                                  "Screenshot_2024-05-01-10-31-02-123_com.android.chrome",
                                  "Capture d’écran (3)", "Captura de pantalla (12)", "Schermafbeelding (2)"])
def test_android_screenshots_of_an_app_and_windows_screenshots_in_other_languages_get_no_caption(name: str):
    """Android names a screenshot after the app it shows ("screenshot instagram", "screenshot com android chrome"
    were captions), and Windows' Print Screen in French or Spanish "Capture d’écran (3)" ("capture d’écran", where
    "Screenshot (3)" was none): no caption, as their English names; a screenshot named by its user keeps its words."""
    assert caption_of(name) is None
    assert caption_of("Screenshot (3)") is None
    assert caption_of("Capture d’écran red bird") == "capture d’écran red bird"
    assert caption_of("screenshot_tool_icon") == "screenshot tool icon"


@pytest.mark.parametrize("name", ["pexels-anna-shvets-4587991", "markus-spiske-iar-afB0QQw-unsplash",
                                  "nasa-Q1p7bh3SHj8-unsplash", "AdobeStock_123456789_Preview"])
def test_a_stock_photo_named_after_its_photographer_or_a_watermarked_comp_gets_no_caption(name: str):
    """Pexels' and Unsplash's downloads are named after the photographer ("pexels anna shvets", "markus spiske iar
    af b 0q qw unsplash" were captions) and Adobe Stock's comp is "..._Preview" ("adobestock preview"): no caption,
    as "pexels-photo-1234567" and "AdobeStock_123456789" are none; a name of words beside "unsplash" keeps them."""
    assert caption_of(name) is None
    assert caption_of("red-bird-unsplash") == "red bird unsplash"
    assert caption_of("unsplash") == "unsplash"
    assert caption_of("sunset-preview") == "sunset preview"


@pytest.mark.parametrize("name", ["WhatsApp Bild 2024-05-01 um 10.31.02", "WhatsApp Image 2024-05-01 à 10.31.02",
                                  "WhatsApp Bild 2024-05-01 um 10.31.02_abcd1234",
                                  "WhatsApp Afbeelding 2024-05-01 om 10.31.02 (2)",
                                  "Imagen de WhatsApp 2024-05-01 a las 10.31.02_abcd1234",
                                  "Image WhatsApp 2024-05-01 à 10.31.02_abcd1234",
                                  "viber_image_2024-05-01_10-31-02-123", "Messenger_creation_1234567890123456",
                                  "Messenger_creation_8F5C2A1B-1234-4C5D-9E8F-0123456789AB"])
def test_a_messengers_saved_picture_in_another_language_or_of_viber_or_messenger_gets_no_caption(name: str):
    """WhatsApp Desktop in German, French, Dutch names a picture "WhatsApp Bild DATE um TIME" ("whatsapp bild um",
    "whatsapp image à" were captions: only English's "at" was a tool's word), Viber "viber_image_DATE" ("viber
    image"), Messenger "Messenger_creation_ID" ("messenger creation 1234 4c 5d 9e 8f"): no caption; an icon of the
    app's name alone keeps it."""
    assert caption_of(name) is None
    assert caption_of("whatsapp") == "whatsapp"
    assert caption_of("viber") == "viber"
    assert caption_of("messenger") == "messenger"


@pytest.mark.parametrize("name", ["DJI_0001", "DJI_20240501103102_0001_D", "GOPR0001",
                                  "PXL_20240101_123456789.PORTRAIT", "PXL_20230512_183012345.NIGHT",
                                  "PXL_20230512_183012345.RAW-01.COVER", "Untitled_Artwork", "Untitled_Artwork 2",
                                  "Photo on 5-1-24 at 10.31 AM #2", "Photo on 01-05-2024 at 10.31"])
def test_a_drones_an_action_cameras_a_pixels_mode_and_procreates_untitled_get_no_caption(name: str):
    """A DJI drone's "DJI_0001" and a GoPro's "GOPR0001" were captioned "dji", "gopr", a Pixel's portrait or night
    photo "pxl portrait", "pxl night", and Procreate's "Untitled_Artwork" "untitled artwork": a camera's or a tool's
    name, no caption, as "DSC01234" and Canva's "Untitled design" are none; the brand's icon keeps its name."""
    assert caption_of(name) is None
    assert caption_of("dji") == "dji"
    assert caption_of("gopro") == "gopro"
    assert caption_of("photo on a beach") == "photo on a beach"


def test_a_flag_written_as_two_u_plus_code_points_is_the_flag():
    """A flag's two regional indicator letters written U+1F1FA U+1F1F8 (as a character U+00E9 is read) were read
    apart, "regional indicator symbol letter u regional indicator symbol letter s": each code point was put between
    spaces, and a flag was read only of two letters side by side. It is "flag us", as 1f1fa-1f1f8 and 🇺🇸 are."""
    for name in ("U+1F1FA U+1F1F8", "U+1F1FA-U+1F1F8", "U+1F1FA_U+1F1F8", "flags_U+1F1FA U+1F1F8"):
        assert caption_of(name).endswith("flag us"), name
    assert caption_of("🇺🇸🇬🇧") == "flag us flag gb"
    assert caption_of("1f1fa-1f1f8") == "flag us"


def test_a_material_symbol_as_google_fonts_downloads_it_is_its_name():
    """Google Fonts' Material Symbols download as "home_24dp_5F6368_FILL0_wght400_GRAD0_opsz24.png" (size, colour and
    the font's axes after the icon's name): captioned "home 5f 6368 fill 0 wght 400 grad 0 opsz"; now "home"."""
    assert caption_of("home_24dp_5F6368_FILL0_wght400_GRAD0_opsz24") == "home"
    assert caption_of("arrow_back_ios_new_24dp_E8EAED_FILL1_wght700_GRADN25_opsz48") == "arrow back ios new"
    assert caption_of("home_FILL0_wght400_GRAD0_opsz24") == "home"
    assert caption_of("home_24dp_5F6368_FILL0_wght400_GRAD0_opsz24 (1)") == "home"
    assert caption_of("looks_3_24dp_5F6368_FILL0_wght400_GRAD0_opsz24") == "looks 3"


def test_a_keycap_emoji_is_one_word_of_a_prompt():
    """"#️⃣" (# VS16 U+20E3) was two words of a prompt, "#" and the invisible "️⃣" (a `rerank --explain` panel each,
    and "️⃣" listed among the unknown words), where "1️⃣" was one: it is one word, and its marks no unknown word;
    two keycaps side by side are two words."""
    from t2i_cli.models.tokenizer import TextTokenizer

    tok = TextTokenizer.train(["a red bird", "a blue fish"] * 4, vocab_size=64)
    hash_key, star_key = "#\ufe0f\u20e3", "*\ufe0f\u20e3"
    assert [w for w, _ in tok.words(f"a red {hash_key} bird", 16)] == ["a", "red", hash_key, "bird"]
    assert [w for w, _ in tok.words(f"{hash_key}{star_key} bird", 16)] == [hash_key, star_key, "bird"]
    unread, n = tok.unread_words(f"a red bird {hash_key}")
    assert "\ufe0f\u20e3" not in unread and n == 4


def test_a_glyph_of_a_mark_punctuation_or_space_written_u_plus_is_its_name():
    """A font's glyphs named by code point: "glyph_U+0301" was captioned "glyph ́" (a combining mark alone after a
    space), "glyph_U+0023", "glyph_U+005F", "glyph_U+0020" all "glyph" ("#", "_" read as separators): a mark,
    punctuation or a space is its name in words; a letter is still itself, and a keycap written in code points is
    the keycap (it was none)."""
    assert caption_of("glyph_U+0301") == "glyph combining acute accent"
    assert caption_of("glyph_uni0301") == "glyph combining acute accent"
    assert caption_of("glyph_U+0023") == "glyph number sign"
    assert caption_of("glyph_U+005F") == "glyph low line"
    assert caption_of("glyph_U+0020") == "glyph space"
    assert caption_of("glyph_U+00E9") == "glyph é"
    assert caption_of("U+0023 U+FE0F U+20E3") == "keycap number sign"
    assert caption_of("glyph_U+20E3") == "glyph combining enclosing keycap"
    assert caption_of("U+1F468 U+200D U+1F469") == "man woman"


@pytest.mark.parametrize("row", ["Red_Bird.png", "sub\\red_bird.png"])
def test_data_caption_refuses_to_caption_by_name_a_picture_a_row_names_in_another_form(tmp_path: Path, row: str):
    """A folder's metadata.csv naming its picture in other letter case (written on macOS or Windows) or with
    Windows' backslashes: training leaves the row out (told to write the file's name, or /), but `data caption`
    wrote the picture's name as its caption, unsaid; once the row was fixed it trained under both captions. It is
    refused as other manifest lines left out are (--dry-run warns), naming the row and the file on disk; a manifest
    above naming it so leaves it as it is."""
    ds = pictures(tmp_path / "ds", "sub/red_bird.png", "sub/blue_fish.png")
    path = row if "\\" in row else "sub/" + row
    (ds / "metadata.csv").write_text(f"file_name,text\n{path},a small red bird\nsub/blue_fish.png,a blue fish\n")
    r = run("data", "caption", ds)
    assert r.exit_code == 1 and "lines left out" in r.stderr and "on disk:" in r.stderr, (r.stdout, r.stderr)
    assert not (ds / "sub" / "red_bird.txt").exists()
    dry = run("data", "caption", ds, "--dry-run")
    assert dry.exit_code == 0 and "lines left out" in dry.stderr
    if "\\" in row:  # (a manifest above, `data caption ds/sub`, writes no caption of it)
        r = run("data", "caption", ds / "sub")
        assert r.exit_code == 0 and "names 2 of the pictures here" in r.stderr, r.stderr
        assert not (ds / "sub" / "red_bird.txt").exists()


@pytest.mark.parametrize("name", ["bird - Copy - Copy", "bird - Copy - Copy (2)", "Copy of Copy of bird",
                                  "bird (copy) (1)", "bird (another copy) (1)"])
def test_a_copy_of_a_copy_is_captioned_as_the_original(name: str):
    """Windows' copy of a copy "bird - Copy - Copy", Google Drive's "Copy of Copy of bird" and a browser's download
    of GNOME's copy "bird (copy) (1)" were "bird copy", "copy of bird": the copy marks of each copy are dropped;
    "edit-copy", an icon theme's, keeps its words."""
    assert caption_of(name) == "bird"
    assert caption_of("route 66 - Copy - Copy") == "route 66"
    assert caption_of("edit-copy") == "edit copy"


@pytest.mark.parametrize("name", ["bird - Kopie", "bird - Kopie (2)", "bird Kopie 2", "bird - Copie", "bird copia",
                                  "Kopie von bird", "Copie de bird", "bird - копия", "bird - 副本"])
def test_a_copy_named_in_another_language_is_captioned_as_the_original(name: str):
    """Windows, macOS and Google Drive in German, French, Spanish, Russian, Chinese name a copy "bird - Kopie",
    "bird copia", "Kopie von bird", "bird - 副本": captioned "bird kopie", "kopie von bird", where "bird - Copy" was
    "bird"; now "bird". A name that is the word alone keeps it."""
    assert caption_of(name) == "bird"
    assert caption_of("kopie") == "kopie"


@pytest.mark.parametrize("folder_name", ["train", "café"])
def test_a_manifest_above_is_not_parsed_row_by_row_where_its_rows_cannot_name_the_folder(tmp_path: Path,
                                                                                        monkeypatch, folder_name: str):
    """A folder with a picture without a caption had every .jsonl above it (16 of a folder, to 16 MiB each: a scraped
    dataset's parts beside it) parsed line by line to find rows naming its pictures: 4 of 20 MB took 6 s of a `data
    preview` that took 2. A row naming one holds the folder's name, so a line without it is not parsed; rows naming
    it (a name written escaped by JSON, "caf\\u00e9", or decomposed, too) are still found."""
    import json
    import unicodedata

    ds = pictures(tmp_path / "ds", f"{folder_name}/red_bird.png", f"{folder_name}/blue_fish.png")
    (ds / folder_name / "blue_fish.txt").write_text("a blue fish\n")
    other = [{"image": f"images/{i:06d}.jpg", "caption": "a photo of a thing"} for i in range(2000)]
    named = {"image": f"{unicodedata.normalize('NFD', folder_name)}/red_bird.png", "caption": "a small red bird"}
    (ds / "laion_part0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*other, named, *other]))
    (ds / "laion_part1.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    calls = []
    real_loads = json.loads
    monkeypatch.setattr(data.json, "loads", lambda s, *a, **k: calls.append(s) or real_loads(s, *a, **k))
    r = run("data", "caption", ds / folder_name)
    assert r.exit_code == 0 and "laion_part0.jsonl names 1 of the pictures here without a caption" in r.stderr, \
        r.stderr
    assert not (ds / folder_name / "red_bird.txt").exists()
    assert len(calls) < 100, len(calls)  # (6,001 lines above: each was parsed)


def test_a_subdivision_flag_is_named_by_its_tags():
    """England's, Scotland's and Wales' flags (a black flag, the tag letters "gbeng", a cancel tag) were all captioned
    "waving black flag", as the black flag alone (their tags, no words, dropped): four pictures of an emoji set, one
    caption. Each is its flag, as code points or as characters."""
    assert caption_of("emoji_u1f3f4_e0067_e0062_e0065_e006e_e0067_e007f") == "emoji flag england"
    assert caption_of("1f3f4-e0067-e0062-e0073-e0063-e0074-e007f") == "flag scotland"
    wales = "\U0001f3f4" + "".join(chr(0xE0000 + ord(c)) for c in "gbwls") + "\U000e007f"
    assert caption_of(wales) == "flag wales"
    assert caption_of("1f3f4") == "waving black flag"
    assert caption_of("1f3f4-200d-2620-fe0f") == "waving black flag skull and crossbones"


@pytest.mark.parametrize("name", ["IMG_1234-Edit", "DSC_1234-HDR-Edit", "IMG_1234-Enhanced-SR", "IMG_1234-Bearbeitet",
                                  "Image from iOS", "Image from iOS (3)", "CamScanner 05-01-2024 10.31"])
def test_a_cameras_picture_edited_ios_mails_and_camscanners_get_no_caption(name: str):
    """Lightroom's and Photoshop's "IMG_1234-Edit", "-HDR-Edit", Lightroom's other enhancements "-Enhanced-SR"
    (only "-Enhanced-NR" was none), iOS Mail's "Image from iOS (3)" and CamScanner's "CamScanner DATE TIME" were
    captioned "img 1234 edit", "image from i os", "cam scanner": no caption; an icon "edit-copy" keeps its words."""
    assert caption_of(name) is None
    assert caption_of("edit-copy") == "edit copy"
    assert caption_of("image_editor") == "image editor"


def test_generate_device_cuda_is_not_refused_early_on_a_machine_with_an_amd_gpu(tmp_path: Path, monkeypatch):
    """generate --device cuda was refused before torch was imported wherever Linux had no libcuda.so.1, "no CUDA GPU
    is available": a ROCm build of torch draws on an AMD GPU as "cuda" without one. Where the AMD GPU driver's
    /dev/kfd is there, it cannot tell, and leaves it to torch; without either, it still refuses early."""
    import ctypes
    import sys

    from t2i_cli import cli

    def no_library(name, *a, **k):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_library)
    monkeypatch.setattr(cli, "ROCM_DEVICE", str(tmp_path / "kfd"), raising=False)
    assert cli.cuda_surely_absent() is True
    (tmp_path / "kfd").write_bytes(b"")
    assert cli.cuda_surely_absent() is False


@pytest.mark.parametrize("name", ["Ekran görüntüsü 2024-05-01 103102", "Skärmbild 2024-05-01 103102",
                                  "Képernyőkép 2024-05-01 103102", "Знімок екрана 2024-05-01 103102"])
def test_windows_snipping_tools_screenshots_in_more_languages_get_no_caption(name: str):
    """Windows 11's Snipping Tool in Turkish, Swedish, Hungarian, Ukrainian names a screenshot "Ekran görüntüsü
    DATE TIME", "Skärmbild DATE TIME" (the list had macOS' "Ekran Resmi", "Skärmavbild"): were "ekran görüntüsü",
    "skärmbild"; no caption, as "Screenshot 2024-05-01 103102" is none."""
    assert caption_of(name) is None
    assert caption_of("skärmbild av fågel") == "skärmbild av fågel"


def test_a_random_id_of_mixed_case_letters_and_digits_is_no_word():
    """A YouTube id ("thumbnail_dQw4w9WgXcQ") or ShareX's random name ("msedge_Xy7Qw2Lp9Z") was read as words at its
    case changes ("msedge xy 7 qw 2 lp 9z"): such an id is dropped as a hash is; words in camel case keep theirs."""
    assert caption_of("thumbnail_dQw4w9WgXcQ") == "thumbnail"
    assert caption_of("msedge_Xy7Qw2Lp9Z") == "msedge"
    assert caption_of("iPhone15ProMax") == "i phone 15 pro max"
    assert caption_of("3DsMax2024") == "3 ds max"
    assert caption_of("R2D2Robot") == "r 2d 2 robot"


@pytest.mark.parametrize("name", ["bird-removebg-preview", "bird-removebg-preview (1)",
                                  "bird_upscayl_4x_realesrgan-x4plus", "bird-min", "bird-300dpi", "bird_720p"])
def test_what_a_tool_adds_to_a_pictures_name_is_no_word(name: str):
    """remove.bg's "bird-removebg-preview", Upscayl's "bird_upscayl_4x_realesrgan-x4plus", TinyPNG's "bird-min" and
    a resolution "300dpi", "720p" were captioned "bird removebg preview", "bird upscayl realesrgan x 4 plus", "bird
    min", "bird 300 dpi", "bird 720p": "bird", as "bird-48px" is; "admin", "bird_min" keep their words."""
    assert caption_of(name) == "bird"
    assert caption_of("admin") == "admin"
    assert caption_of("bird_min") == "bird min"
    assert caption_of("workout-30-min") == "workout 30 min"


def test_an_image_generators_name_is_its_prompt_or_none():
    """DALL·E's download "DALL·E 2024-01-01 12.34.56 - a red bird on a branch" was captioned "dall·e a red bird on a
    branch", and ChatGPT's "ChatGPT Image Apr 1, 2025, 10_00_00 AM" "chat gpt image apr 1 2025 am": the prompt alone,
    and no caption."""
    assert caption_of("DALL·E 2024-01-01 12.34.56 - a red bird on a branch") == "a red bird on a branch"
    assert caption_of("DALL·E 3 2024-01-01 12.34.56 - A red bird") == "a red bird"
    assert caption_of("ChatGPT Image Apr 1, 2025, 10_00_00 AM") is None
    assert caption_of("ChatGPT Image Apr 1, 2025, 10_00_00 AM (1)") is None
    assert caption_of("chatgpt") == "chatgpt"


def test_data_caption_refuses_beside_a_folders_manifest_row_of_a_windows_drives_path(tmp_path: Path):
    """A folder's metadata.csv written on Windows with absolute paths (C:\\Users\\me\\ds\\train\\red_bird.png): training
    leaves the row out ("write it relative to the manifest's folder"), and `data caption ds` wrote "red bird" beside
    the picture unsaid, which trained under both captions once the row was fixed: refused as beside other lines
    left out (--dry-run warns)."""
    ds = pictures(tmp_path / "ds", "train/red_bird.png")
    (ds / "metadata.csv").write_text("file_name,text\nC:\\Users\\me\\ds\\train\\red_bird.png,a small red bird\n")
    r = run("data", "caption", ds)
    assert r.exit_code == 1 and "lines left out" in r.stderr and "Windows drive" in r.stderr, (r.stdout, r.stderr)
    assert not (ds / "train" / "red_bird.txt").exists()
    dry = run("data", "caption", ds, "--dry-run")
    assert dry.exit_code == 0 and "lines left out" in dry.stderr
