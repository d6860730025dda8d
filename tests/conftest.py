"""Shared fixtures: tiny models built in the test, under fixed seeds."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import torch
from PIL import ImageFile
from typer.testing import CliRunner

from t2i_cli.models.clip import Clip, ClipConfig
from t2i_cli.models.dvae import DVAE, DVAEConfig
from t2i_cli.models.tokenizer import TextTokenizer
from t2i_cli.models.transformer import Transformer, TransformerConfig
from t2i_cli.weights import save_model

try:  # click >= 8.2 keeps stderr apart from stdout by default (and has no mix_stderr); older clicks need asking
    RUNNER = CliRunner(mix_stderr=False)
except TypeError:
    RUNNER = CliRunner()


def end_group(proc: subprocess.Popen) -> None:
    """Kill a process started in its own session (start_new_session) with everything in its group, if it still
    runs: a failed test leaves no process behind."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def run(*args):
    """Run a t2i command in-process (Typer's CliRunner); stdout and stderr apart."""
    from t2i_cli.cli import app

    return RUNNER.invoke(app, [str(a) for a in args])


SRC = str(Path(__file__).resolve().parents[1] / "src")


def signal_after_step(monkeypatch, n: int, signum: int):
    """Make the n-th AdamW step of this process send it signum once the weights are updated and before the
    training loop counts the step (where a stop used to be checkpointed wrongly); returns what undoes it."""
    real_step, calls = torch.optim.AdamW.step, {"n": 0}

    def signalled_step(self, *a, **k):
        out = real_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == n:
            os.kill(os.getpid(), signum)
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", signalled_step)
    return lambda: monkeypatch.setattr(torch.optim.AdamW, "step", real_step)


def torch_tmp(tmp_path: Path) -> Path:
    """A temporary folder for torchrun, which leaves a torchelastic_* folder behind in it on every run."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return tmp_path / "tmp"


def torchrun_t2i(tmp_path: Path, patch: str, *args: str, monitor: float | None = None,
                 nproc: int = 2) -> subprocess.CompletedProcess:
    """`t2i train ARGS` (tiny preset unless resuming, CPU, gloo) under an nproc-process torchrun, each process first
    running `patch` (Python source: monkeypatches of t2i); each process's exit code is written to tmp_path/exit-RANK.
    monitor: torchrun's --monitor-interval in seconds (its default 0.1 s: a test where one process is killed and the
    other must meet the lost connection before torchrun's SIGTERM gives it longer, as a loaded machine may not run
    the survivor within a tenth of a second)."""
    script = tmp_path / "patched_t2i.py"
    script.write_text(f"""
import os, sys
sys.path.insert(0, {SRC!r})
{patch}
from t2i_cli.cli import main
sys.argv = ["t2i", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    open(os.path.join({str(tmp_path)!r}, "exit-" + os.environ["RANK"]), "w").write(str(e.code))
    raise
""")
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1", "TMPDIR": str(torch_tmp(tmp_path))}
    preset = [] if "--resume" in args else ["--preset", "tiny"]  # a resume keeps the run's own
    interval = [] if monitor is None else [f"--monitor-interval={monitor}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *interval,
           str(script), "train", *preset, "--workers", "0", "--device", "cpu", "-q", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)



def refused_with_the_pipe_open(tmp_path: Path, args: list[str], weights: Path | None = None) -> tuple[int, str]:
    """Run `t2i generate --prompts - ARGS` (in tmp_path, writing to tmp_path/out) with one prompt written to its
    standard input and the pipe left open (as `tail -f` leaves it): its exit code and standard error, or a test
    failure where it waits for the pipe to close (60 s)."""
    env = dict(os.environ, PYTHONPATH=SRC, TMPDIR=str(tmp_path))
    given = [] if weights is None else ["--weights", str(weights)]
    p = subprocess.Popen([sys.executable, "-m", "t2i_cli", "generate", "--prompts", "-", *args, *given, "--out",
                          str(tmp_path / "out")], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True, cwd=tmp_path)
    try:
        p.stdin.write(b"a red bird\n")
        p.stdin.flush()  # (and left open: the writer has more to say)
        try:
            code = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"generate --prompts - {' '.join(args)} waited for its pipe to close before refusing")
        return code, p.stderr.read().decode()
    finally:
        end_group(p)
        p.stdin.close()

def exit_codes(tmp_path: Path) -> list[str]:
    """Each torchrun process's exit code as torchrun_t2i recorded it ("missing" where a process ended without
    one: killed, or aborted), ranks 0 and 1."""
    return [(tmp_path / f"exit-{r}").read_text() if (tmp_path / f"exit-{r}").is_file() else "missing" for r in (0, 1)]


def one_line_failure(r, code: int = 1) -> str:
    """A refused command (Typer's CliRunner result): exit code, exactly one 'error:' line on stderr, no
    traceback; returns the line."""
    assert r.exit_code == code, (r.exit_code, r.stdout, r.stderr, r.exception)
    assert isinstance(r.exception, SystemExit), repr(r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    return lines[0]


TINY_CAPTIONS = ["a red bird", "a blue fish on the left", "two green cats", "a big yellow star at night",
                 "a small purple heart on a white background", "a red car above a blue house"]
TEXT_LEN = 12


def label_pixels(label: str, side: int, colour: tuple[int, int, int]) -> bytes:
    """The pixels of label's band on a one-tile contact sheet (a side x side tile of colour, labels 24 px high), as
    images.contact_sheet draws it now (its font chosen by images.label_font, which a test may replace)."""
    from PIL import Image

    from t2i_cli import images

    sheet = images.contact_sheet([Image.new("RGB", (side, side), colour)], [label], columns=1, label_height=24)
    return sheet.crop((0, side + 4, sheet.width, sheet.height)).tobytes()


def build_tiny_folder(folder: Path, seed: int = 0, with_clip: bool = True, captions: list[str] = TINY_CAPTIONS,
                      ) -> Path:
    """Write a complete random-weights folder (tokenizer trained on captions, dVAE, transformer, CLIP) that
    loads and runs."""
    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tok = TextTokenizer.train(captions * 5, vocab_size=120)
    (folder / "tokenizer.json").write_text(tok.to_json())
    dcfg = DVAEConfig(image_side=16, downsample=4, n_codes=32, n_hid=8, code_dim=8)
    save_model(DVAE(dcfg), folder / "dvae.safetensors", "dvae")
    tcfg = TransformerConfig(text_vocab=tok.vocab_size(TEXT_LEN), text_len=TEXT_LEN, image_vocab=32,
                             grid=dcfg.grid, n_layer=2, n_head=2, n_embd=32)
    save_model(Transformer(tcfg), folder / "transformer.safetensors", "transformer")
    if with_clip:
        ccfg = ClipConfig(image_side=16, text_vocab=tok.vocab_size(TEXT_LEN), text_len=TEXT_LEN,
                          n_pad_start=tok.n_bpe, n_hid=8, n_embd=32, n_layer=1, n_head=2, embed_dim=16)
        save_model(Clip(ccfg), folder / "clip.safetensors", "clip")
    return folder


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A tiny random weights folder in a temporary directory."""
    return build_tiny_folder(tmp_path / "weights")


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny models run fastest on one thread, and CI's two cores are shared with other work."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(autouse=True, scope="session")
def ctrl_c_raises():
    """The tests of Ctrl-C send SIGINT and expect KeyboardInterrupt: a suite started in the background by a
    script (`(pytest &)`) inherits SIGINT ignored, and Python then leaves it ignored (seven such tests failed
    with exit 0, the stop never seen). A t2i started so keeps ignoring it, as it should (nohup-like)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield


@pytest.fixture(autouse=True)
def signal_handlers_restored():
    """An inference command run in-process makes SIGTERM raise KeyboardInterrupt (cli.stop_on_sigterm), as it
    should in its own process; here each test starts with the handlers the one before it found."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in saved.items():
        if handler is not None:  # None: set outside Python, which Python cannot put back
            signal.signal(s, handler)


def pairs(spec) -> set[tuple[str, str]]:
    """The (colour, kind) pairs a world scene spec shows."""
    return {(o.colour, o.kind) for o in spec.objects}


def bomb_png(path: Path, side: int, prompt: str | None = None) -> Path:
    """A small PNG whose header claims side x side 1-bit pixels (its data really decodes to that), with an
    optional `prompt` text chunk after the image data."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + (side + 7) // 8)
    idat = b"".join(comp.compress(row * 256) for _ in range(side // 256)) + comp.compress(row * (side % 256))
    idat += comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    text = chunk(b"tEXt", b"prompt\x00" + prompt.encode()) if prompt is not None else b""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + text + chunk(b"IEND", b""))
    return path


@pytest.fixture
def decode_spy(monkeypatch) -> list[tuple[int, int]]:
    """Sizes of every image Pillow decodes while the test runs."""
    sizes: list[tuple[int, int]] = []
    real = ImageFile.ImageFile.load

    def load(self):
        sizes.append(self.size)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return sizes
