"""Review of session 47's hC and hD changes (hG): each mend's test fails without it."""

from __future__ import annotations

from conftest import one_line_failure, run
from test_reliability import TINY


def test_an_option_given_again_without_its_value_is_said_to_need_one(tmp_path, tiny_weights):
    """`generate "a red bird" --seed 1 --seed` (the second --seed's value missing) was refused as "Invalid value
    for '--seed': Input should be a valid integer" (before, "--seed 1 and --seed disagree"), of a value never
    given: it is now the parser's own line, as `--seed` alone gets it. Two values given still disagree."""
    gen = ["generate", "a red bird", "--weights", tiny_weights, "--out", tmp_path / "o"]
    alone = one_line_failure(run(*gen, "--seed"), 2)
    assert alone.startswith("error: Option '--seed' requires an argument"), alone
    assert one_line_failure(run(*gen, "--seed", "1", "--seed"), 2) == alone
    line = one_line_failure(run(*gen, "--seed", "1", "--seed", "2"), 2)
    assert line.startswith("error: --seed 1 and --seed 2 disagree; give one of them"), line
    assert not (tmp_path / "o").exists()


def test_a_true_or_false_model_setting_is_not_told_to_use_digits(tmp_path):
    """`--model word_region=ｔrue` (a fullwidth t) was told "word_region takes true or false, written in the digits
    0-9": a true-or-false setting takes words, not digits. It is refused as any other word is; a number setting
    in other digits still names the digits 0-9."""
    for value in ("ｔrue", "真"):
        line = one_line_failure(run("train", "--stage", "clip", "--out", tmp_path / "r", "--model",
                                    f"word_region={value}", *TINY), 2)
        assert line == f"error: --model word_region={value!r}: word_region takes true or false", line
    line = one_line_failure(run("train", "--stage", "clip", "--out", tmp_path / "r", "--model", "n_embd=٣", *TINY), 2)
    assert line == "error: --model n_embd='٣': n_embd takes an integer, written in the digits 0-9", line
    assert not (tmp_path / "r").exists()


def test_a_resume_says_a_model_key_its_run_file_holds_as_the_files(tmp_path):
    """A run whose train_config.json's model holds a key its stage's model does not take ("zzz": 1), resumed from
    the command line, was told "--model zzz=1: the dvae model has no setting 'zzz'", an option never given (hC
    mended the same words for a setting's type): it now names the file, as a wrong type is named."""
    from t2i_cli.train import RUN_CONFIG

    run_dir = tmp_path / "dvae"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--data", "world", "--out", run_dir, "--steps", "1",
            "--batch-size", "2", "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    config = run_dir / RUN_CONFIG
    text = config.read_text()
    config.write_text(text.replace('"n_hid": 8', '"n_hid": 8, "zzz": 1'))
    assert config.read_text() != text
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "2"), 2)
    assert line == (f'error: {config} is not a readable run config (its model holds "zzz", no setting a dvae run\'s '
                    f"model takes; its settings are code_dim, downsample, fsq_levels, n_codes, n_hid, n_res, "
                    f"pixel_eps); the run cannot be resumed"), line
    config.write_text(text.replace('"n_hid": 8', '"n_hid": 8, "' + "z" * 3000 + '": 1'))  # (a long key: in brief)
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "2"), 2)
    assert f'(its model holds "{"z" * 39}... (3,002 characters), no setting' in line, line


def test_a_long_wrong_model_setting_in_a_run_file_is_said_in_brief(tmp_path):
    """A run whose train_config.json's n_hid is a string of 3,000 characters, resumed: the refusal said the whole
    string, a line of 3 KB (hC's new check of the file's types, in check_types' words). It is said to its first
    characters and its length, as t2i says other long values."""
    from t2i_cli.train import RUN_CONFIG

    run_dir = tmp_path / "dvae"
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--data", "world", "--out", run_dir, "--steps", "1",
            "--batch-size", "2", "--workers", "0", "--quiet")
    assert r.exit_code == 0, r.stderr
    config = run_dir / RUN_CONFIG
    config.write_text(config.read_text().replace('"n_hid": 8', '"n_hid": "' + "x" * 3000 + '"'))
    line = one_line_failure(run("train", "--resume", run_dir, "--steps", "2"), 2)
    assert line == (f'error: {config} is not a readable run config (n_hid is "{"x" * 39}... (3,002 characters), not '
                    f"an integer); the run cannot be resumed"), line


def test_a_number_with_a_non_ascii_sign_is_told_which_character(tmp_path):
    """`--lr 3e−4` (a minus sign, U+2212, its digits 0-9) was told "'3e−4' is not a number written in the digits
    0-9", of digits it had right (and `--model pixel_eps=1e−3` alike): the line now names the character that is not
    ASCII. A number in other digits (`--steps ٣`) is still told to use the digits 0-9."""
    common = ["train", "--stage", "dvae", "--out", tmp_path / "r", *TINY]
    line = one_line_failure(run(*common, "--lr", "3e−4"), 2)
    assert line == "error: --lr '3e−4': '3e−4' is not a number written in ASCII ('−', U+2212, is not)", line
    line = one_line_failure(run(*common, "--model", "pixel_eps=1e−3"), 2)
    assert line == ("error: --model pixel_eps='1e−3': pixel_eps takes a finite number, written in ASCII ('−', U+2212, "
                    "is not)"), line
    line = one_line_failure(run(*common, "--steps", "٣"), 2)
    assert line == "error: --steps '٣': '٣' is not a number written in the digits 0-9", line
    assert not (tmp_path / "r").exists()
