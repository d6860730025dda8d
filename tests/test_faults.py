"""Fault injection through the CLI: every case of README's "When things go wrong" table.

Each failure must exit 2 (bad command line) or 1 (anything else), print one line naming the problem,
show no traceback, and leave no partial file (no *.tmp, no half PNG, no empty reserved name).
Ctrl-C during training and SIGKILL during a checkpoint write live in test_train.py; the plain
option-range refusals (empty prompt, --n 0, --top-k -1, ...) live in test_cli.py.
"""

from __future__ import annotations

import errno
import json
import math
import os
import pickle
import re
import shutil
import stat
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from conftest import bomb_png, build_tiny_folder, run
from t2i_cli import pipeline
from t2i_cli.files import safe_stem
from t2i_cli.images import read_png_text
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.prompt_file import blank
from t2i_cli.weights import load_tensors, save_model, save_tensors

SRC = Path(__file__).resolve().parents[1] / "src" / "t2i_cli"
IMAGE_VOCAB = 32  # the tiny model's codebook (conftest.build_tiny_folder)




@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """One tiny weights folder for the tests that only read it."""
    return build_tiny_folder(tmp_path_factory.mktemp("faults") / "weights")


@pytest.fixture
def own_weights(weights, tmp_path) -> Path:
    """A private copy of the tiny folder, for tests that damage it."""
    return Path(shutil.copytree(weights, tmp_path / "own-weights"))



def generate(weights: Path, out: Path, *extra, prompt: str = "a red bird"):
    return run("generate", prompt, "--weights", weights, "--out", out, "--device", "cpu", *extra)


def assert_clean_failure(r, code: int, prefix: str = "error:") -> str:
    """Exit code, exactly one stderr line starting with prefix, no traceback; returns that line."""
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert isinstance(r.exception, SystemExit), repr(r.exception)  # not an escaped exception
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(prefix), r.stderr
    assert "internal error" not in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary, hidden, empty or undecodable files under folder (a clean folder has none)."""
    bad = []
    if not folder.exists():
        return bad
    for p in folder.rglob("*"):
        if not p.is_file():
            continue
        if p.name.endswith(".tmp") or p.name.startswith(".") or p.stat().st_size == 0:
            bad.append(p.name)
        elif p.suffix == ".png" and not is_valid_png(p):
            bad.append(p.name)
    return sorted(bad)


def is_valid_png(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.png")) if folder.exists() else []


# ---------------------------------------------------------------------------------------------- prompts
def test_long_prompt_warns_with_the_dropped_count_and_still_writes_the_image(weights, tmp_path):
    prompt = "a big yellow star at night " * 5
    n_tokens = len(TextTokenizer.from_file(weights / "tokenizer.json").tokenizer.encode(prompt).ids)
    assert n_tokens > 12
    out = tmp_path / "out"
    r = generate(weights, out, prompt=prompt)
    assert r.exit_code == 0, r.stderr
    warning = [ln for ln in r.stderr.splitlines() if "dropped" in ln]
    assert len(warning) == 1 and re.search(rf"\b{n_tokens - 12}\b", warning[0]), r.stderr
    (png,) = pngs(out)
    assert is_valid_png(png) and read_png_text(png)["prompt"] == prompt  # the whole prompt is recorded
    assert leftovers(out) == []


@pytest.mark.parametrize("prompt, stem", [
    ("un oiseau rouge très joli", "un-oiseau-rouge-tres-joli"),
    ("Ünïcödé ﬁsh", "unicode-fish"),
    ("🐦🐟", "image-fa5ec590"),  # letters or emoji without an ASCII form: a hash of the words (test_s40_scripts)
    ("日本語の鳥", "image-e2e45785"),
    ("a red 🐦 bird", "a-red-bird-570505b6"),
])
def test_non_ascii_and_emoji_prompts_work_with_ascii_file_names(weights, tmp_path, prompt, stem):
    out = tmp_path / "out"
    r = generate(weights, out, prompt=prompt)
    assert r.exit_code == 0, r.stderr
    (png,) = pngs(out)
    assert png.name == f"{stem}-000.png"
    assert png.resolve().parent == out.resolve()
    assert read_png_text(png)["prompt"] == prompt
    if not prompt.isascii():  # README: "words the model never saw, non-ASCII, emoji: warns naming them"
        assert "warning" in r.stderr
        assert any(ch in r.stderr for ch in prompt if not ch.isascii())


# ---------------------------------------------------------------------------------------------- options
def test_top_k_above_the_codebook_is_refused_and_the_codebook_size_is_allowed(weights, tmp_path):
    out = tmp_path / "out"
    line = assert_clean_failure(generate(weights, out, "--top-k", IMAGE_VOCAB + 1), 2)
    assert "--top-k" in line and str(IMAGE_VOCAB) in line
    assert not out.exists() or not any(out.iterdir())
    r = generate(weights, out, "--top-k", IMAGE_VOCAB)  # the boundary itself is valid (= off)
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize("option, value", [("--temperature", "1e-300"), ("--temperature", "1e-45"),
                                           ("--guidance", "1e300"), ("--guidance", "1e39"),
                                           ("--top-p", "5e-324"), ("--top-p", "1e-46")])
def test_extreme_but_accepted_sampling_values_do_not_crash(weights, tmp_path, option, value):
    out = tmp_path / "out"
    r = generate(weights, out, option, value)
    assert r.exit_code in (0, 2), (r.exit_code, r.stderr)
    assert "internal error" not in r.stderr
    assert leftovers(out) == []


# ---------------------------------------------------------------------------------------------- weights
def _delete_dvae(folder: Path) -> None:
    (folder / "dvae.safetensors").unlink()


def _truncate_transformer(folder: Path) -> None:
    path = folder / "transformer.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_dvae(folder: Path) -> None:
    (folder / "dvae.safetensors").write_bytes(os.urandom(4096))


def transformer_config(folder: Path, **changes) -> TransformerConfig:
    """The folder's own transformer config, with some fields changed."""
    _, meta = load_tensors(folder / "transformer.safetensors")
    return TransformerConfig(**{**json.loads(meta["config"]), **changes})


def _transformer_tensors_of_another_config(folder: Path) -> None:
    """Tensors of an n_embd=48 transformer under the folder's own n_embd=32 config: wrong shapes."""
    path = folder / "transformer.safetensors"
    _, meta = load_tensors(path)
    assert json.loads(meta["config"])["n_embd"] == 32
    save_tensors(path, Transformer(transformer_config(folder, n_embd=48)).state_dict(), meta)


def _transformer_for_another_codebook(folder: Path) -> None:
    """A well-formed transformer trained for a 64-code dVAE: the parts do not fit together."""
    save_model(Transformer(transformer_config(folder, image_vocab=64)), folder / "transformer.safetensors",
               "transformer")


class _Trap:
    """Unpickling this creates the marker file: proof that something executed pickle."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


WEIGHT_FAULTS = [
    pytest.param(_delete_dvae, "dvae.safetensors", id="missing-file"),
    pytest.param(_truncate_transformer, "transformer.safetensors", id="truncated"),
    pytest.param(_random_dvae, "dvae.safetensors", id="random-bytes"),
    pytest.param(_transformer_tensors_of_another_config, "transformer.safetensors", id="another-config-shapes"),
    pytest.param(_transformer_for_another_codebook, "parts do not fit together", id="another-config-codebook"),
]


@pytest.mark.parametrize("damage, named", WEIGHT_FAULTS)
def test_damaged_weights_folder_is_refused_naming_the_file(own_weights, tmp_path, damage, named):
    damage(own_weights)
    out = tmp_path / "out"
    line = assert_clean_failure(generate(own_weights, out), 1)
    assert named in line
    assert not out.exists() or not any(out.iterdir())


def test_transformer_of_another_width_but_its_own_config_is_accepted(own_weights, tmp_path):
    """Files describe themselves: a different n_embd with matching metadata is a valid model, not an error."""
    save_model(Transformer(transformer_config(own_weights, n_embd=48)), own_weights / "transformer.safetensors",
               "transformer")
    r = generate(own_weights, tmp_path / "out")
    assert r.exit_code == 0, r.stderr
    assert len(pngs(tmp_path / "out")) == 1


def test_pickle_renamed_safetensors_is_refused_and_never_unpickled(own_weights, tmp_path):
    marker = tmp_path / "marker"
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Trap(probe)))  # the payload is live: unpickling it does create the file
    assert probe.exists()
    (own_weights / "transformer.safetensors").write_bytes(pickle.dumps({"tok.weight": _Trap(marker)}))
    line = assert_clean_failure(generate(own_weights, tmp_path / "out"), 1)
    assert "transformer.safetensors" in line and "safetensors" in line
    assert not marker.exists()


def test_tokenizer_that_does_not_match_the_transformer(own_weights, tmp_path):
    other = TextTokenizer.train(["zebra quokka wombat", "completely different words here"], vocab_size=60)
    assert other.n_bpe != TextTokenizer.from_file(own_weights / "tokenizer.json").n_bpe
    (own_weights / "tokenizer.json").write_text(other.to_json())
    line = assert_clean_failure(generate(own_weights, tmp_path / "out"), 1)
    assert "tokenizer" in line and "parts do not fit together" in line


# ---------------------------------------------------------------------------------------------- output files
def test_out_below_a_regular_file_is_refused(weights, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    line = assert_clean_failure(generate(weights, blocker / "sub"), 2)  # a usage error, as in train and export
    assert line == f"error: --out {blocker / 'sub'} is inside {blocker}, which is a file; choose another with --out"
    assert blocker.read_text() == "keep me"


@pytest.fixture
def read_only_dir(tmp_path, monkeypatch) -> Path:
    """A folder nothing may be created in: chmod 0o555, or (as root, who ignores modes) simulated."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):  # root: make os.open and mkdir inside it fail as they would for a user
        real_open, real_mkdir = os.open, Path.mkdir

        def inside(path) -> bool:
            return Path(os.path.abspath(path)).is_relative_to(folder) and Path(os.path.abspath(path)) != folder

        def guarded_open(path, flags, *a, **k):
            if inside(path) and flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *a, **k)

        def guarded_mkdir(self, *a, **k):
            if inside(self):
                raise PermissionError(errno.EACCES, "Permission denied", str(self))
            return real_mkdir(self, *a, **k)

        monkeypatch.setattr(os, "open", guarded_open)
        monkeypatch.setattr(Path, "mkdir", guarded_mkdir)
    yield folder
    folder.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("where", ["the folder itself", "a new subfolder"])
def test_out_in_a_read_only_folder_is_refused(weights, read_only_dir, where, monkeypatch):
    """Before anything is drawn: an existing folder that refuses new files was found out only when the first
    PNG was written, after the drawing, in words that did not name --out."""
    def no_drawing(*a, **k):
        raise AssertionError("drew before finding the folder unwritable")

    monkeypatch.setattr(pipeline, "draw_codes", no_drawing)
    out = read_only_dir if where == "the folder itself" else read_only_dir / "new"
    line = assert_clean_failure(generate(weights, out), 1)
    if where == "the folder itself":
        assert line == (f"error: cannot write to --out {out}: Permission denied; choose a writable folder with "
                        f"--out"), line
    else:
        assert line == (f"error: cannot create folder {out}: Permission denied; choose a writable one with --out"), line
    assert list(read_only_dir.iterdir()) == []


def _reference(weights: Path, tmp_path: Path, *extra) -> list[bytes]:
    ref = tmp_path / "reference"
    assert generate(weights, ref, "--seed", "4", *extra).exit_code == 0
    return [p.read_bytes() for p in pngs(ref)]


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
def test_failure_while_writing_the_second_png_keeps_the_first_and_leaves_nothing_partial(
        weights, tmp_path, monkeypatch, failure):
    expected = _reference(weights, tmp_path, "--n", "2")
    real_write_bytes = Path.write_bytes
    calls = []

    def write_half_then_fail(self, data):
        calls.append(self)
        if len(calls) == 2:
            real_write_bytes(self, data[: len(data) // 2])  # the disk filled up mid-file
            raise failure
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    out = tmp_path / "out"
    r = generate(weights, out, "--n", "2", "--seed", "4")
    monkeypatch.undo()
    if isinstance(failure, OSError):
        line = assert_clean_failure(r, 1)
        assert "No space left on device" in line or "free space" in line
        # the new file it was writing, not a name with a placeholder for the number it never claimed
        assert line.startswith(f"error: cannot write a new a-red-bird-*.png in {out}: "), line
    else:
        line = assert_clean_failure(r, 130, prefix="interrupted")
    assert len(calls) == 2 and calls[1].parent == out  # the fault did hit the second image's file
    assert [p.read_bytes() for p in pngs(out)] == expected[:1]  # the first image, intact
    assert leftovers(out) == []
    assert sorted(p.name for p in out.iterdir()) == ["a-red-bird-000.png"]
    assert r.stdout.splitlines() == [str(out / "a-red-bird-000.png")]  # the kept file named, as a finished run does


def test_a_new_file_gets_its_name_only_once_complete_and_never_takes_a_used_one(tmp_path, monkeypatch):
    """write_new never shows an empty or partial file under a final name (a kill -9 mid-write leaves
    only a hidden temporary), takes the next free name, and falls back to reserving a name where the file
    system has no hard links."""
    from t2i_cli.errors import OutputError
    from t2i_cli.files import write_new

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "pic-000.png").write_bytes(b"the user's own file")
    seen = []

    def write(tmp: Path) -> None:
        seen.append(sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")))
        tmp.write_bytes(b"new picture")

    assert write_new(folder, "pic", ".png", write) == folder / "pic-001.png"
    assert seen == [["pic-000.png"]]  # no name was taken while the file was being written
    assert (folder / "pic-000.png").read_bytes() == b"the user's own file"
    assert (folder / "pic-001.png").read_bytes() == b"new picture"

    def no_links(*a):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    assert write_new(folder, "pic", ".png", write) == folder / "pic-002.png"
    assert (folder / "pic-002.png").read_bytes() == b"new picture"
    assert sorted(p.name for p in folder.iterdir()) == ["pic-000.png", "pic-001.png", "pic-002.png"]
    real_replace = os.replace

    def full_disk(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)  # the rename onto the reserved name fails: the name goes too
    with pytest.raises(OutputError, match="No space left on device"):
        write_new(folder, "pic", ".png", write)
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in folder.iterdir()) == ["pic-000.png", "pic-001.png", "pic-002.png"]


def test_an_atomic_write_puts_a_new_file_in_place_and_never_rewrites_the_old_one(tmp_path):
    """atomic_write_bytes renames a finished new file onto the name: a hard link to the old file (another name
    of the same inode, or a reader holding it open) still reads the old bytes, whole, afterwards."""
    from t2i_cli.files import atomic_write_bytes

    path, alias = tmp_path / "results.json", tmp_path / "alias.json"
    path.write_bytes(b"old bytes")
    os.link(path, alias)
    with open(path, "rb") as reader:
        assert atomic_write_bytes(path, b"new bytes, longer") == path
        assert reader.read() == b"old bytes"
    assert path.read_bytes() == b"new bytes, longer"
    assert alias.read_bytes() == b"old bytes"  # written in place, the link would read the new bytes
    assert path.stat().st_ino != alias.stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alias.json", "results.json"]  # no temporary left


def test_an_atomic_write_fsyncs_the_new_file_before_it_takes_the_name(tmp_path, monkeypatch):
    """The new file's bytes reach the disk (fsync) before os.replace gives it the name: after a power cut the
    name holds the old file or the whole new one, never an empty one."""
    from t2i_cli import files

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, Path(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(files.os, "fsync", fsync)
    monkeypatch.setattr(files.os, "replace", replace)
    path = tmp_path / "results.json"
    path.write_bytes(b"old")
    files.atomic_write_bytes(path, b"new")
    monkeypatch.undo()
    ino = path.stat().st_ino
    assert ("fsync", ino) in events and ("replace", ino, path) in events, events
    assert events.index(("fsync", ino)) < events.index(("replace", ino, path)), events
    assert path.read_bytes() == b"new"


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_an_atomic_write_gives_the_file_the_usual_permissions(tmp_path, monkeypatch, mask):
    """mkstemp makes its file 0600; the finished file gets what open() would give it, 0666 less the umask
    (read once, when t2i starts: here set for the test, the process's and t2i's copy alike, and restored)."""
    from t2i_cli import files

    old = os.umask(mask)
    try:
        monkeypatch.setattr(files, "_UMASK", mask)
        path = files.atomic_write_bytes(tmp_path / "results.json", b"{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask  # 0644, 0664


def test_ctrl_c_while_decoding_the_second_batch(weights, tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_BATCH", 1)
    expected = _reference(weights, tmp_path, "--n", "3")
    real = pipeline.draw_codes
    calls = []

    def interrupt_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "draw_codes", interrupt_second)
    out = tmp_path / "out"
    r = generate(weights, out, "--n", "3", "--seed", "4")
    line = assert_clean_failure(r, 130, prefix="interrupted")
    assert "kept" in line
    (png,) = pngs(out)
    assert is_valid_png(png) and png.read_bytes() == expected[0]
    assert read_png_text(png)["index"] == "0"
    assert leftovers(out) == []
    assert [p.name for p in out.iterdir()] == [png.name]
    assert r.stdout.splitlines() == [str(png)]  # a script reading stdout learns what was kept


# ---------------------------------------------------------------------------------------------- data folders
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_data_preview_skips_non_images_truncated_images_and_bombs(tmp_path, decode_spy):
    folder = tmp_path / "data"
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        Image.new("RGB", (20, 20), colour).save(folder / f"good{i}.png")
        (folder / f"good{i}.txt").write_text(f"good image {i}")
    (folder / "fake.jpg").write_text("this is text, not a jpeg")
    Image.new("RGB", (64, 64), (0, 200, 0)).save(tmp_path / "full.png")
    (folder / "truncated.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    bomb_png(folder / "bomb-big.png", 20000)  # 400 Mpx: over twice Pillow's limit
    bomb_png(folder / "bomb-mid.png", 10000)  # 100 Mpx: between the warning and the error limits
    for stem in ("fake", "truncated", "bomb-big", "bomb-mid"):
        (folder / f"{stem}.txt").write_text(f"a {stem} image")
    (folder / "notes.md").write_text("not an image at all")
    assert (folder / "bomb-big.png").stat().st_size < 200_000

    sheet = tmp_path / "sheet.png"
    r = run("data", "preview", folder, "--out", sheet, "--n", "4", "--size", "16")
    assert r.exit_code == 0, (r.stderr, r.exception)
    warnings = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("warning:"), r.stderr
    assert "2 unreadable images" in warnings[0] and "using 2" in warnings[0], warnings[0]
    assert "2 images over 89 megapixels (scale it down)" in warnings[0], warnings[0]  # complete, just too large
    assert all(w * h < 10_000_000 for w, h in decode_spy), decode_spy  # no bomb was ever decoded
    assert is_valid_png(sheet)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.parent != folder) == ["data", "full.png", "sheet.png"]


# ---------------------------------------------------------------------------------------------- fuzzing
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(prompt=st.text())
@example(prompt="")
@example(prompt="\x00\x1b[2J\u202e")
@example(prompt="[bold]a[/bold] [red]bird")
@example(prompt="a " * 200)
@example(prompt="-0")
@example(prompt="--help")
def test_any_prompt_exits_0_or_2_without_traceback(weights, prompt):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        # "--" ends the options, so prompts such as "-0" or "--help" reach the tokenizer as text
        r = run("generate", "--weights", weights, "--n", "1", "--out", out, "-q", "--device", "cpu", "--", prompt)
        assert r.exit_code in (0, 2), (r.exit_code, r.stderr, r.exception)
        assert isinstance(r.exception, (SystemExit, type(None))), repr(r.exception)
        assert "Traceback" not in r.stdout + r.stderr
        written = pngs(out)
        if r.exit_code == 0:
            assert len(written) == 1 and re.fullmatch(r"[a-z0-9-]+-000\.png", written[0].name)
            assert read_png_text(written[0])["prompt"] == "".join(
                ch if ch in "\n\t" or ord(ch) >= 32 else f"\\x{ord(ch):02x}" for ch in prompt)
        else:  # blank: nothing but spaces and characters that draw nothing (controls, zero-width)
            assert written == [] and blank(prompt)
        assert (r.exit_code == 2) == blank(prompt)


FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, 1.0, 0.5, 1e-9, 2.0])


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(n=st.integers().filter(lambda n: not 3 < n <= 256), top_k=st.integers(), top_p=FLOATS,
       temperature=FLOATS, guidance=FLOATS)
@example(n=256 + 1, top_k=0, top_p=1.0, temperature=1.0, guidance=1.0)
@example(n=1, top_k=2**70, top_p=1.0, temperature=1.0, guidance=1.0)
@example(n=1, top_k=0, top_p=math.nan, temperature=1.0, guidance=1.0)
@example(n=1, top_k=0, top_p=1.0, temperature=math.inf, guidance=math.nan)
@example(n=2, top_k=1, top_p=1e-9, temperature=0.01, guidance=0.0)
def test_any_sampling_options_exit_0_or_2_never_1(weights, n, top_k, top_p, temperature, guidance):
    with tempfile.TemporaryDirectory() as tmp:
        r = run("generate", "a red bird", "--weights", weights, "--out", Path(tmp) / "out", "-q", "--device", "cpu",
                "--n", n, "--top-k", top_k, "--top-p", repr(top_p), "--temperature", repr(temperature),
                "--guidance", repr(guidance))
        assert r.exit_code in (0, 2), (r.exit_code, r.stderr, r.exception)
        assert "Traceback" not in r.stdout + r.stderr
        if r.exit_code == 2:
            assert len(r.stderr.strip().splitlines()) == 1
        else:
            assert len(pngs(Path(tmp) / "out")) == n


# ---------------------------------------------------------------------------------------------- security
UNSAFE = re.compile(r"torch\.load\(|\bimport\s+(pickle|cPickle|dill|shelve|marshal)\b|\bfrom\s+(pickle|dill)\s+import"
                    r"|\bpickle\.|allow_pickle\s*=\s*True|weights_only\s*=\s*False|(?<![\w.])(eval|exec)\(")


def test_source_never_unpickles_or_evaluates():
    sources = sorted(SRC.glob("*.py"))
    assert len(sources) > 10
    found = [f"{p.name}:{i}: {line.strip()}" for p in sources
             for i, line in enumerate(p.read_text().splitlines(), start=1) if UNSAFE.search(line)]
    assert found == []
    assert UNSAFE.search("x = torch.load(f)") and UNSAFE.search("y = eval(s)") and UNSAFE.search("import pickle")
    assert not UNSAFE.search("model.eval()") and not UNSAFE.search("def eval_cmd(") and not UNSAFE.search(
        "_print_eval(result)")


def test_png_text_chunks_hold_no_raw_control_characters(weights, tmp_path):
    prompt = "a red\x00 bird \x1b[31m at night\x07"
    out = tmp_path / "out"
    r = generate(weights, out, "-q", prompt=prompt)
    assert r.exit_code == 0, r.stderr
    (png,) = pngs(out)
    meta = read_png_text(png)
    assert meta["prompt"] == "a red\\x00 bird \\x1b[31m at night\\x07"
    for key, value in meta.items():
        assert not any(ord(ch) < 32 and ch not in "\n\t" for ch in key + value), (key, value)
    raw = png.read_bytes()
    assert b"\x1b[31m" not in raw


def test_warnings_do_not_echo_terminal_escape_sequences(weights, tmp_path):
    r = generate(weights, tmp_path / "out", prompt="a red bird \x1b[2J\x1b]0;owned\x07")
    assert r.exit_code == 0, r.stderr
    assert "warning" in r.stderr
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


@pytest.mark.parametrize("case", ["prompt", "weights-path"])
def test_square_brackets_in_user_text_are_not_rich_markup(weights, tmp_path, case):
    if case == "prompt":
        r = generate(weights, tmp_path / "out", prompt="a [/x] bird")
        assert r.exit_code == 0 and isinstance(r.exception, (SystemExit, type(None))), repr(r.exception)
        assert "[/" in r.stderr  # the unknown word is named as typed
    else:
        line = assert_clean_failure(generate(tmp_path / "w[/x]", tmp_path / "out"), 1)
        assert "w[/x]" in line


@pytest.mark.parametrize("prompt", ["/abs/path", "~/x", "C:\\Windows\\system32", "..\\..\\x", "./.hidden",
                                    "a\x00b", "\x00\u200ba", "a" * 500])
def test_file_names_from_prompts_stay_inside_out(weights, tmp_path, prompt):
    out = tmp_path / "deep" / "out"
    r = generate(weights, out, "-q", prompt=prompt)
    assert r.exit_code == 0, r.stderr
    (written,) = [Path(line) for line in r.stdout.split()]
    assert written.resolve().parent == out.resolve() and written.is_file()
    assert re.fullmatch(r"[a-z0-9-]{1,48}-000\.png", written.name)
    assert [p for p in tmp_path.rglob("*") if p.is_file() and p.parent != out] == []


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_safe_stem_is_always_a_plain_bounded_name(text):
    stem = safe_stem(text)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", stem) and len(stem) <= 48
    assert Path(f"{stem}-000.png").name == f"{stem}-000.png" and ".." not in stem



@pytest.mark.parametrize("at", [1, 2])
def test_sigterm_while_decoding_stops_like_ctrl_c(weights, tmp_path, monkeypatch, at):
    """`timeout`/`kill` sends SIGTERM: the images finished before it are kept, a new output folder with none is
    removed, and one line says so, exit 130 (Python's default ended the process silently, mid-batch, and left
    the new folder empty)."""
    import signal

    monkeypatch.setattr(pipeline, "MAX_BATCH", 1)
    expected = _reference(weights, tmp_path, "--n", "3")
    real, calls = pipeline.draw_codes, []

    def terminate(*a, **k):
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)

    monkeypatch.setattr(pipeline, "draw_codes", terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "out"
    try:
        r = generate(weights, out, "--n", "3", "--seed", "4")
    finally:
        signal.signal(signal.SIGTERM, before)
    line = assert_clean_failure(r, 130, prefix="interrupted")
    assert line == ("interrupted: nothing was written" if at == 1 else  # (at 1 it said "finished files are kept")
                    "interrupted: 1 finished file kept, named on stdout; nothing partial was written"), line
    if at == 1:
        assert not out.exists()
    else:
        assert [p.read_bytes() for p in pngs(out)] == expected[:1] and leftovers(out) == []


@pytest.mark.parametrize("side", [10000, 20000])
def test_an_image_prompt_with_too_many_pixels_is_refused_for_its_size_not_as_incomplete(tmp_path, decode_spy, side):
    """A complete 100-megapixel picture given to --image was refused with Pillow's own words ("could be
    decompression bomb DOS attack.; give a complete PNG ... file"): the file is complete; its size is the problem."""
    big = bomb_png(tmp_path / "pano.png", side)
    r = run("generate", "a cat", "--image", big, "--weights", build_tiny_folder(tmp_path / "w"), "--out",
            tmp_path / "o")
    assert r.exit_code == 1, r.stderr
    assert r.stderr.strip() == (f"error: image {big} has more pixels than t2i decodes (89,478,485); scale it down "
                                "(t2i reads pictures at 128 px or so on a side)"), r.stderr
    assert all(w * h < 10_000_000 for w, h in decode_spy), decode_spy


def test_a_long_file_name_fits_its_temporary_too(tmp_path):
    """The temporary was named after the whole final name plus 14 characters, so a 240-character name that fits
    the file system (255) failed with "File name too long" and advice to choose a writable folder."""
    from t2i_cli import files

    stem = "x" * 240
    path = files.write_new(tmp_path, stem, ".png", lambda tmp: tmp.write_bytes(b"png"))
    assert path.name == f"{stem}-000.png" and path.read_bytes() == b"png"
    assert files.atomic_write_bytes(tmp_path / f"{'y' * 250}.json", b"{}").read_bytes() == b"{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{stem}-000.png", f"{'y' * 250}.json"]


@pytest.mark.parametrize("command", ["generate", "train", "data preview"])
def test_a_path_name_too_long_for_the_file_system_is_one_line_naming_it(weights, tmp_path, command):
    """An --out whose name no file system takes (300 characters against 255) was an "internal error" with
    the OSError's class name in four commands."""
    long = tmp_path / ("x" * 300)
    data = tmp_path / "data"
    data.mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(data / "a.png")
    (data / "a.txt").write_text("a red square\n")
    args = {"generate": ["generate", "a red bird", "--weights", weights, "--candidates", "1", "--out", long],
            "train": ["train", "--stage", "tokenizer", "--data", data, "--out", long],
            "data preview": ["data", "preview", data, "--out", f"{long}.png"]}[command]
    line = assert_clean_failure(run(*args), 1)
    assert line.startswith(f"error: {str(tmp_path)[:56]}...") and "..." + "x" * 30 in line, line  # shortened
    assert line.endswith("File name too long; the name is longer than this file system allows; choose a shorter "
                         "path"), line
    assert len(line) < 300 and list(tmp_path.iterdir()) == [data]


def test_an_os_error_on_a_path_says_what_to_do_and_one_without_a_path_stays_an_internal_error(monkeypatch, capsys):
    import typer

    from t2i_cli import cli

    for code, advice in ((errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "may write")):
        line = cli.os_error_line(OSError(code, os.strerror(code), "/x/y.png"))
        assert line.startswith(f"/x/y.png: {os.strerror(code)}; ") and advice in line, line
    monkeypatch.setitem(cli.STATE, "debug", False)
    for bug in (OSError(errno.EIO, "Input/output error"),  # no file named: a bug until shown otherwise
                FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/own.json")):  # t2i checks paths given
        with pytest.raises(typer.Exit) as ex, cli.user_errors():
            raise bug
        assert ex.value.exit_code == 1 and "internal error: " in capsys.readouterr().err
    with pytest.raises(typer.Exit) as ex, cli.user_errors():
        raise OSError(errno.ENOSPC, "No space left on device", "/x/y.png")
    assert ex.value.exit_code == 1
    assert capsys.readouterr().err.strip() == ("error: /x/y.png: No space left on device; the disk is full; free "
                                               "some space or choose a path on another disk")


def test_data_preview_into_a_read_only_folder_names_out_before_reading_the_pictures(read_only_dir, tmp_path,
                                                                                     monkeypatch):
    from t2i_cli import data

    def no_reading(*a, **k):
        raise AssertionError("read the pictures before finding --out unwritable")

    monkeypatch.setattr(data, "open_source", no_reading)
    line = assert_clean_failure(run("data", "preview", "world", "--n", "1", "--out", read_only_dir / "p.png"), 1)
    assert line == (f"error: cannot write to --out {read_only_dir}: Permission denied; choose a writable folder "
                    f"with --out"), line
    assert list(read_only_dir.iterdir()) == []


LOG_UNTIL_FULL = """
import sys
from t2i_cli.train import Logger
log = Logger(sys.argv[1], is_main=True)
try:
    for step in range(1, 10_000):
        log.log(step, {"loss": 1.0 / step, "note": "x" * 100})
except OSError as e:
    print(e.errno, e.filename)
"""


def test_a_metrics_line_the_disk_cannot_hold_is_not_left_half_written(tmp_path):
    """A full disk or a file-size limit (`ulimit -f`) cut metrics.jsonl mid-line, and the error named no file
    (an internal error): the line is taken back whole, and the error names metrics.jsonl."""
    import resource
    import subprocess
    import sys

    from conftest import SRC

    def limit():  # 4 KiB: a few dozen lines fit, and the limit falls inside one
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))

    r = subprocess.run([sys.executable, "-c", LOG_UNTIL_FULL, str(tmp_path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": SRC}, preexec_fn=limit, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(errno.EFBIG), str(tmp_path / "metrics.jsonl")], r.stdout
    text = (tmp_path / "metrics.jsonl").read_text()
    assert 0 < len(text) <= 4096 and 4096 - len(text) < 200 and text.endswith("\n")  # whole lines up to the limit
    steps = [json.loads(line)["step"] for line in text.splitlines()]
    assert steps == list(range(1, len(steps) + 1))


def test_a_data_error_in_a_loader_worker_is_its_one_line(tmp_path, monkeypatch):
    """A picture that vanished while training ran was read in a DataLoader worker, whose error reached the user
    as the worker's whole traceback ("Caught DataError in DataLoader worker process 0. Original Traceback ...")."""
    from conftest import run
    from t2i_cli import world
    from t2i_cli.errors import DataError

    parent, real = os.getpid(), world.scene

    def vanished(*a, **k):
        if os.getpid() != parent:  # in the worker (forked: it has this patch)
            raise DataError("image /x/gone.png does not exist; check the path")
        return real(*a, **k)

    monkeypatch.setattr(world, "scene", vanished)
    r = run("train", "--stage", "dvae", "--preset", "tiny", "--steps", "3", "--workers", "1", "--sample-every", "0",
            "--out", tmp_path / "run", "-q")
    assert r.exit_code == 1 and r.stderr == "error: image /x/gone.png does not exist; check the path\n", r.stderr


def test_a_worker_error_keeps_its_whole_message():
    """The message of an error re-raised from a DataLoader worker is its last traceback line: a message that spans
    lines (a path with a line break) lost its start."""
    from t2i_cli.cli import worker_message

    msg = ("Caught DataError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
           '  File "/x/images.py", line 64, in load_rgb\n    raise unreadable(path, "image", e) from e\n'
           "t2i_cli.errors.DataError: image /data/summer\n2024/a.png does not exist; check the path\n")
    assert worker_message(msg) == "image /data/summer\n2024/a.png does not exist; check the path"
    indented = msg.replace("summer\n2024", "summer\n  2024")  # a continuation that looks like a frame's line
    assert worker_message(indented) == "image /data/summer\n  2024/a.png does not exist; check the path"
    assert worker_message("a plain message") == "a plain message"


def test_a_killed_generates_temporary_is_removed_by_the_next_once_stale(tiny_weights, tmp_path):
    """kill -9 of `generate` mid-write left .STEM-NNN.png.XXXX.tmp in --out for good (rerank counted it as
    "not an image"); the next generate or vary into the folder removes one a minute old. A fresh one (another
    t2i writing now) and the user's own files stay."""
    out = tmp_path / "out"
    out.mkdir()
    stale, fresh = out / ".a-red-bird-NNN.png.k2j3h4g5.tmp", out / ".a-red-bird-NNN.png.z9y8x7w6.tmp"
    mine = [out / ".notes.tmp", out / "a-red-bird-NNN.png.tmp", out / "picture.png"]
    for p in (stale, fresh, *mine):
        p.write_bytes(b"x")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    r = run("generate", "a red bird", "--candidates", "1", "--weights", tiny_weights, "--out", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert not stale.exists() and fresh.exists() and all(p.exists() for p in mine)


def test_a_new_name_made_from_a_long_file_name_is_cut_to_fit_the_file_system(tmp_path):
    """`rerank --explain` names its strip explain-<picture> and `--link-best` its copies <picture>-NNN: for a
    picture of a 250-byte name that fits the file system, both failed ("File name too long; choose a writable
    folder"). write_new cuts the stem, at a character boundary, so the new name fits in 255 bytes."""
    from t2i_cli import files

    for stem in ("b" * 250, "é" * 200, "explain-" + "x" * 251, "\N{GRINNING FACE}" * 62):  # (4-byte letters)
        path = files.write_new(tmp_path, stem, ".png", lambda tmp: tmp.write_bytes(b"png"))
        assert len(path.name.encode()) <= 255 and path.read_bytes() == b"png"
        assert stem.startswith(path.name[:-len("-000.png")]) and len(path.name.encode()) >= 245, path.name
    short = files.write_new(tmp_path, "a-red-bird", ".png", lambda tmp: tmp.write_bytes(b"png"))
    assert short.name == "a-red-bird-000.png"
