"""Session 42 review of the day's diff (41d7dcd..1ebe99a): defects found in it, each with the test that shows it."""

from __future__ import annotations

from t2i_cli.models.tokenizer import without_format

BLACK_FLAG = "\U0001f3f4"
SCOTLAND = BLACK_FLAG + "".join(chr(0xE0000 + ord(c)) for c in "gbsct") + "\U000e007f"


class _Counted(str):
    """A str that counts the characters read from it by index (what a walk back over the text costs)."""

    reads = 0

    def __getitem__(self, key):
        type(self).reads += 1
        return str.__getitem__(self, key)


def test_without_format_reads_a_run_of_tags_in_one_pass():
    """A run of n tag characters was walked back over at each tag (to the black flag or the run's start): n * n / 2
    reads, 30 s for the 16,000 tags of one 64 KB caption file, hours for a 1 MiB manifest caption, in every
    encode, file name and label. Each character is read a bounded number of times; the flag's tags still stay and
    tags after anything else still go."""
    n = 3000
    _Counted.reads = 0
    text = _Counted("a " + BLACK_FLAG + chr(0xE0067) * n + " b")
    assert without_format(text) == "a " + BLACK_FLAG + chr(0xE0067) * n + " b"
    assert _Counted.reads <= 4 * n, _Counted.reads
    _Counted.reads = 0
    assert without_format(_Counted("a" + chr(0xE0067) * n + "b")) == "ab"
    assert _Counted.reads <= 4 * n, _Counted.reads
    # (what it keeps is as before: a flag's tags, not those after a tag run broken by another character)
    assert without_format(f"the flag {SCOTLAND} here") == f"the flag {SCOTLAND} here"
    assert without_format(f"{BLACK_FLAG}x{chr(0xE0067)}") == f"{BLACK_FLAG}x"
    assert without_format(f"{SCOTLAND}{SCOTLAND}") == SCOTLAND * 2


def test_evaluations_refuse_greedy_copies_by_the_keyword_the_caller_passed(tmp_path):
    """evaluate_model(candidates=4) and evaluate_data(draws=3) with top_k=1 were refused by draw_each as "n=4 with
    top_k=1 ...; ask for n=1": a keyword the caller never passed (README: the API's refusals name the keywords the
    caller passed); evaluate_data's came only once every val picture had been read and checked."""
    import pytest
    from PIL import Image

    from conftest import build_tiny_folder
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig
    from t2i_cli.world.evaluate import evaluate_model

    pipe = TextToImage.from_folder(build_tiny_folder(tmp_path / "w"), "cpu")
    greedy = SamplingConfig(top_k=1, guidance=1, regional=0)
    with pytest.raises(UsageError, match=r"^candidates=4 with top_k=1 draws 4 copies .* ask for candidates=1"):
        evaluate_model(pipe, None, 1, 0, greedy, candidates=4)
    data = tmp_path / "d"
    data.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (i * 20, 90, 7 * i)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    seen = []
    with pytest.raises(UsageError, match=r"^draws=3 with top_k=1 draws 3 copies .* ask for draws=1"):
        evaluate_data(pipe, data, 2, 0, greedy, lambda *a: seen.append(a), draws=3)
    assert seen == []  # (refused before any picture is read)


def test_evaluate_data_refusals_of_guidance_stop_and_regional_name_the_keywords(tmp_path):
    """evaluate_data(sampling=SamplingConfig(guidance=1, guidance_stop=0.5)) from Python was refused as "--guidance-stop
    0.5 has nothing to stop: --guidance 1 turns guidance off ...; leave --guidance-stop out", and a regional weight
    as "--regional 2 ...": flags the caller never typed, where every other refusal of the API names its keywords (the
    command line's lines are as before: tests/test_s42_refusals)."""
    import pytest
    from PIL import Image

    from conftest import build_tiny_folder
    from t2i_cli.data_eval import evaluate_data
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage
    from t2i_cli.sampling import SamplingConfig

    pipe = TextToImage.from_folder(build_tiny_folder(tmp_path / "w"), "cpu")
    data = tmp_path / "d"
    data.mkdir()
    for i in range(12):
        Image.new("RGB", (16, 16), (i * 20, 90, 7 * i)).save(data / f"p{i}.png")
        (data / f"p{i}.txt").write_text("a red bird\n")
    with pytest.raises(UsageError) as e:
        evaluate_data(pipe, data, 2, 0, SamplingConfig(guidance=1, guidance_stop=0.5))
    assert str(e.value).startswith("guidance_stop=0.5 has nothing to stop: guidance=1 turns guidance off, and no "
                                   "val caption draws regional guidance") and "--" not in str(e.value), str(e.value)
    with pytest.raises(UsageError) as e:
        evaluate_data(pipe, data, 2, 0, SamplingConfig(regional=2.0), regional_asked=True)
    assert str(e.value).startswith("regional=2.0 guides the two objects") and "--" not in str(e.value), str(e.value)


def test_a_manifest_above_is_named_past_a_line_training_leaves_out(tmp_path):
    """ds/metadata.jsonl naming train/red_bird.png and train/blue_fish.png after one line that is not JSON: training
    on ds reads both rows (the bad line left out and counted), but `data preview ds/train` counted rows above only up
    to the bad line, found none and said nothing of the manifest (it offered `t2i data caption` instead, whose
    captions by name training on ds then reads beside the manifest's)."""
    from PIL import Image

    from conftest import one_line_failure, run

    train = tmp_path / "ds" / "train"
    train.mkdir(parents=True)
    for i, name in enumerate(("red_bird", "blue_fish")):
        Image.new("RGB", (16, 16), (90 * i, 40, 40)).save(train / f"{name}.png")
    (tmp_path / "ds" / "metadata.jsonl").write_text(
        'not json\n{"file_name": "train/red_bird.png", "text": "a red bird"}\n'
        '{"file_name": "train/blue_fish.png", "text": "a blue fish"}\n')
    line = one_line_failure(run("data", "preview", train, "--out", tmp_path / "sheet.png"))
    assert f"{tmp_path / 'ds' / 'metadata.jsonl'} names 2 of the pictures here without a caption" in line, line
    assert "data caption" not in line, line
    r = run("data", "caption", train)  # (left as they are: refused until session 43)
    assert "names 2 of the pictures here" in r.stderr, r.stderr
    assert not (train / "red_bird.txt").exists() and not (train / "blue_fish.txt").exists()


def test_a_name_caption_holds_a_non_joiner_only_where_the_tokenizer_reads_it():
    """`data caption` of "red<ZWNJ>bird.png" wrote "red<ZWNJ>bird" into the caption file: an invisible mark the
    tokenizer does not read beside ASCII (models.tokenizer.without_format), kept whatever stood around it; between
    two letters of a script spelled with it (Persian) it stays, as the tokenizer keeps it."""
    from t2i_cli.name_captions import caption_of

    assert caption_of("red\u200cbird") == "redbird"
    assert caption_of("\u200cred bird\u200c") == "red bird"
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # (a word spelled with a ZWNJ)
    assert caption_of(f"{persian} bird") == f"{persian} bird"


def test_a_pipe_named_like_a_manifest_beside_pictures_is_not_waited_for(tmp_path):
    """A pipe named captions.jsonl beside pictures without a caption (files_under lists pipes, never to be read):
    `data preview` opened it to read its first line, looking for a manifest to name, and waited forever for a
    writer. It is no manifest, and the folder is refused at once as any folder without captions is."""
    import os
    import subprocess
    import sys

    import pytest
    from PIL import Image

    from conftest import SRC

    Image.new("RGB", (16, 16), (200, 40, 40)).save(tmp_path / "red_bird.png")
    os.mkfifo(tmp_path / "captions.jsonl")
    try:
        r = subprocess.run([sys.executable, "-m", "t2i_cli", "data", "preview", str(tmp_path), "--out",
                            str(tmp_path / "sheet.png")], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONPATH=SRC), stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail("data preview waited on a pipe named captions.jsonl")
    assert r.returncode == 1 and r.stderr.startswith("error: no usable image-caption pairs"), r.stderr
    assert "captions.jsonl" not in r.stderr, r.stderr
