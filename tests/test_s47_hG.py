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
