"""Session 47, hA: each command decides whether its --top-p is greedy (at or below 1/codebook, as --top-k 1 is) once,
from one read of the transformer file's header, with one test (SamplingConfig.greedy);
the defects found on the way, each with a test that fails without its fix."""

import json
from fractions import Fraction
from pathlib import Path

import pytest
from PIL import Image

from conftest import one_line_failure, run

GREEDY_BY_P = "a --top-p at or below 1/32, this model's 32 codes, keeps only the most likely code"


@pytest.fixture
def transformer_reads(monkeypatch):
    """Each read of a transformer file's header before the weights load (files.header_config, weights.file_config:
    the two readers a command has used), as a list of paths; the load itself is refused (error: loaded), so what a
    command reads before it is all that is counted."""
    import t2i_cli.files as files
    import t2i_cli.weights as weights
    from t2i_cli.errors import UsageError
    from t2i_cli.pipeline import TextToImage

    reads, header_config, file_config = [], files.header_config, weights.file_config

    def counted_header(path, kind):
        reads.append(path) if kind == "transformer" else None
        return header_config(path, kind)

    def counted_file(path, kind, header=None):
        reads.append(path) if kind == "transformer" else None
        return file_config(path, kind, header)

    def loaded(*a, **k):
        raise UsageError("loaded")

    monkeypatch.setattr(files, "header_config", counted_header)
    monkeypatch.setattr(weights, "file_config", counted_file)
    monkeypatch.setattr(TextToImage, "from_folder", loaded)
    return reads


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "src.png"
    Image.new("RGB", (16, 16), (200, 30, 30)).save(src)
    return src


@pytest.mark.parametrize("command, reads", [
    (["eval", "--n", "1"], 0),  # (eval read the header at its default --top-p 1 too)
    (["eval", "--n", "1", "--top-p", "0.5"], 1),
    (["eval", "--n", "1", "--top-p", "1e-9"], 1),
    (["generate", "a red bird", "--top-p", "0.5", "--temperature", "0.5"], 1),  # (2: again where moot was checked)
    (["generate", "--prompts", "PROMPTS", "--top-p", "1e-9", "--keep", "1"], 1),  # (2: the --prompts path's checks)
    (["vary", "SRC", "--top-p", "0.5", "--temperature", "0.5"], 1),  # (2: vary's check, then _generate's)
    (["vary", "SRC"], 0),  # (vary read it at any --top-p too)
])
def test_each_command_reads_the_codebook_size_once_and_only_for_a_top_p_below_1(command, reads, tmp_path,
                                                                                 tiny_weights, transformer_reads):
    """Whether a --top-p is greedy is decided once a command, before the load: generate read the transformer's header
    twice on its --prompts path and again where it checked the settings a greedy --top-p makes moot (vary too), and
    eval and vary read it at the default --top-p of 1, which keeps every code."""
    (tmp_path / "prompts.txt").write_text("a red bird\n")
    args = [{"PROMPTS": tmp_path / "prompts.txt", "SRC": _source(tmp_path)}.get(a, a) for a in command]
    out = [] if command[0] == "eval" else ["--out", tmp_path / "out"]
    line = one_line_failure(run(*args, "--weights", tiny_weights, "--device", "cpu", "-q", *out), 2)
    assert line == "error: loaded", line  # (every check passed: the load was reached)
    assert len(transformer_reads) == reads, transformer_reads


def _with_image_vocab(folder: Path, vocab) -> Path:
    """folder's transformer file rewritten with this image_vocab in its config (its tensors as they were)."""
    from t2i_cli.weights import load_tensors, save_tensors

    path = folder / "transformer.safetensors"
    tensors, meta = load_tensors(path)
    config = json.loads(meta["config"])
    config["image_vocab"] = vocab
    save_tensors(path, {k: v.clone() for k, v in tensors.items()}, {**meta, "config": json.dumps(config)})
    return folder


@pytest.mark.parametrize("command", [
    ["generate", "a red bird", "--top-p", "0.5", "--out", "OUT"],
    ["vary", "SRC", "--top-p", "0.5", "--out", "OUT"],
    ["vary", "SRC", "--out", "OUT"],
    ["eval", "--n", "1"],
    ["eval", "--n", "1", "--top-p", "0.5"],
])
def test_a_transformer_whose_image_vocab_is_no_whole_number_is_refused_by_the_load(command, tmp_path, tiny_weights):
    """A transformer file whose config gives its image_vocab as "32" (a string) was an internal error ("TypeError:
    '>' not supported between instances of 'str' and 'int'", or "can't multiply sequence by non-int") in generate
    at a --top-p below 1, and in vary and eval at any --top-p, where the greedy check read the codebook's size
    (weights.file_config, which does not check its type); now that read takes a whole number only and the load says
    what is wrong, as it says it at --top-p 1."""
    weights = _with_image_vocab(tiny_weights, "32")
    args = [{"OUT": tmp_path / "out", "SRC": _source(tmp_path)}.get(a, a) for a in command]
    r = run(*args, "--weights", weights, "--device", "cpu", "-q")
    assert "internal error" not in r.stderr, r.stderr
    line = one_line_failure(r, r.exit_code)
    assert r.exit_code not in (0, 2) and "carries an unusable transformer config" in line \
        and "image_vocab" in line, line


def test_cli_greedy_by_p_reads_nothing_at_top_k_1_or_top_p_1(tmp_path, tiny_weights, monkeypatch):
    """cli._greedy_by_p: refuse_greedy_copies' top_p and vocab where the --top-p is greedy, else {}; the header is
    read only for a --top-p below 1 beside a --top-k other than 1."""
    import t2i_cli.cli as cli

    reads = []
    monkeypatch.setattr(cli, "_header_vocab", lambda folder: reads.append(folder) or 32)
    assert cli._greedy_by_p(0, 1e-9, tiny_weights) == {"top_p": 1e-9, "vocab": 32}
    assert cli._greedy_by_p(5, 1 / 32, tiny_weights) == {"top_p": 1 / 32, "vocab": 32}
    assert cli._greedy_by_p(0, 0.5, tiny_weights) == {}
    assert len(reads) == 3
    for top_k, top_p in ((1, 1e-9), (0, 1.0), (0, 0.0), (0, float("nan")), (0, 2.0)):
        assert cli._greedy_by_p(top_k, top_p, tiny_weights) == {}
    assert len(reads) == 3


def test_the_float_range_refusal_is_one_sentence_for_a_setting_past_a_floats_range():
    """SamplingConfig refuses a number past a float's range in one sentence, whether it came as a whole number
    (10**400) or as another real (Fraction(10**400)): plain_number and SamplingConfig each wrote it."""
    from t2i_cli.errors import UsageError
    from t2i_cli.sampling_config import SamplingConfig, plain_number

    for value in (10 ** 400, Fraction(10 ** 400)):
        with pytest.raises(UsageError) as e:
            SamplingConfig(guidance=value)
        assert str(e.value).startswith("guidance must be a number within a float's range, got "), str(e.value)
    with pytest.raises(UsageError, match=r"^keep_top must be a number within a float's range, got Fraction\("):
        plain_number(Fraction(10 ** 400), "keep_top")
    assert plain_number(10 ** 400, "keep_top") == 10 ** 400  # (an int as it is: its range is the caller's)


@pytest.mark.parametrize("top", ["-1", "257", str(10 ** 12)])
@pytest.mark.parametrize("link", [[], ["--link-best"]])
def test_rerank_top_out_of_range_is_one_sentence_before_link_best(top, link, tmp_path):
    """rerank --top outside 0..256 is said in one sentence, before --link-best's need of a --top (each was said in
    its own place, the range twice)."""
    (tmp_path / "pics").mkdir()
    line = one_line_failure(run("rerank", tmp_path / "pics", "--top", top, *link), 2)
    assert line == f"error: --top must be in 0..256 (0 = no sheet), got {top}", line
    line = one_line_failure(run("rerank", tmp_path / "pics", "--link-best"), 2)
    assert line == ("error: --link-best needs --top K with K from 1 to 256 (it copies the best K of each prompt into "
                    "FOLDER/best/); add --top K, or leave --link-best out")  # (test_s47_hD's wording)


@pytest.mark.parametrize("greedy", [["--top-k", "1"], ["--top-p", "1e-9"]])
def test_vary_says_a_missing_source_before_its_greedy_copies_at_top_k_1_as_at_a_greedy_top_p(greedy, tmp_path,
                                                                                            tiny_weights):
    """vary's --strength 1 copies refusal is one branch for --top-k 1 and a greedy --top-p: `vary missing.png
    --top-k 1 --strength 1 --n 2` was told to leave --n out (exit 2), and then that missing.png cannot be read, where
    the same command at --top-p 1e-9 said the missing file first; now both say it first."""
    line = one_line_failure(run("vary", tmp_path / "missing.png", *greedy, "--strength", "1", "--n", "2",
                                "--weights", tiny_weights, "--out", tmp_path / "out"), 1)
    assert line.startswith("error: cannot read ") and "missing.png: No such file or directory" in line, line
    src = _source(tmp_path)
    line = one_line_failure(run("vary", src, *greedy, "--strength", "1", "--n", "2", "--weights", tiny_weights,
                                "--out", tmp_path / "out"), 2)
    assert line.startswith(f"error: --n 2 with {' '.join(greedy).replace('1e-9', '1e-09')} and --strength 1 draws 2 "
                           f"copies of one image"), line
    assert not (tmp_path / "out").exists()
