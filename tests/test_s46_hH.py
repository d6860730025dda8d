"""Session 46, hH: issue 14's cold start beside `import torch` and the codes.

Typer >= 0.2x converts each option's value (each default too) through a Pydantic TypeAdapter, built on a command's
first parse: a cold `t2i generate` imported Pydantic and built 27 adapters before torch began to load.
cli.QuickCoercion converts the plain values itself; these tests check that it converts them as Typer does, and
that a generate's parse then leaves Pydantic unimported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import SRC, run

from t2i_cli import cli

typer_coercion = pytest.importorskip("typer._coercion")  # (older Typers convert through Click: nothing to check)

# A generate parsed up to the first import of torch (cli._imports_held), in a fresh interpreter: which of Typer's
# converters were loaded by then.
PARSED = r"""
import sys
import t2i_cli.cli as cli

class Parsed(BaseException):
    pass

def held(*modules):
    raise Parsed

cli._imports_held = held
sys.argv = ["t2i"] + sys.argv[1:]
try:
    cli.app(standalone_mode=False)
except Parsed:
    print("pydantic" in sys.modules, "torch" in sys.modules)
"""


def _parsed(tmp_path: Path, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=SRC, T2I_OMP="keep")
    r = subprocess.run([sys.executable, "-c", PARSED, *args], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_generate_parses_without_pydantic(tmp_path):
    pytest.importorskip("pydantic")  # (Typer's converters import it)
    # the default command, and one giving an int, a float, a str and a Path option
    assert _parsed(tmp_path, "generate", "a red bird") == "False False"
    assert _parsed(tmp_path, "generate", "a red bird", "--seed", "7", "--temperature", "0.9", "--n", "2",
                   "--precision", "fp32", "--out", str(tmp_path / "pics")) == "False False"


def _commands(group, ctx):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if hasattr(cmd, "list_commands"):
            yield from _commands(cmd, typer.Context(cmd, parent=ctx, info_name=name))
        else:
            yield cmd


SAMPLES = (None, "", "0", "7", "007", "-5", "-0", "12345678901234567890123", "1.5", "-0.0", "0.250", "1e3", " 3",
           "+3", "3_0", "abc", "inf", "nan", "x/y.png", ".", "-", 0, 1, -3, 0.5, 2.0, True, False, Path("outputs"),
           Path("."))


def _outcome(runtime, value, param, ctx):
    try:
        value = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as e:  # noqa: BLE001 (the two converters must fail alike)
        return "raised", type(e).__name__, str(e)
    return "value", type(value), repr(value)  # (repr: NaN is NaN)


def test_quick_coercion_converts_as_typer_does(tmp_path, monkeypatch):
    """Every option and argument of every command, on values of each kind (plain ones that QuickCoercion
    converts itself, and others that it hands to Typer): the same value of the same type, or the same error."""
    monkeypatch.chdir(tmp_path)  # ("x/y.png" and "." are looked at by Typer's path checks)
    root = typer.main.get_command(cli.app)
    ctx = typer.Context(root, info_name="t2i")
    checked = quick = 0
    for cmd in [root, *_commands(root, ctx)]:
        cctx = typer.Context(cmd, info_name=cmd.name)
        for param in cmd.get_params(cctx):
            if not hasattr(param, "type_descriptor"):
                continue
            typer_own = typer_coercion.build_runtime_param(param.type_descriptor)
            mine = cli.QuickCoercion(param)
            for value in SAMPLES:
                if param.multiple or param.nargs != 1:
                    continue
                ours = _outcome(mine, value, param, cctx)
                theirs = _outcome(typer_own, value, param, cctx)
                assert ours == theirs, (cmd.name, param.name, value)
                checked += 1
                quick += cli.QuickCoercion._plain(value, param, cctx)[0]
    assert checked > 1000 and quick > 500  # (the commands' options were all reached, most values converted here)


@pytest.mark.parametrize("args", [
    ("generate", "x", "--n", "abc"),
    ("generate", "x", "--seed", "1.5"),
    ("generate", "x", "--temperature", "warm"),
    ("generate", "x", "--n", " 3", "--top-k", "1"),
    ("generate", "x", "--guidance", "1e400", "--n", "0"),
    ("generate", "x", "--n", "0"),
    ("generate", "x", "--seed", "-1"),
    ("generate", "", "--out", "pics"),
    ("vary", "nothing.png", "--strength", "x"),
    ("rerank", "--keep", "zero", "a.png"),
])
def test_refusals_read_as_before(args, monkeypatch, tmp_path):
    """A command line refused before any model loads says the same with QuickCoercion as with Typer's own
    converters alone (quick_coercion a no-op)."""
    monkeypatch.chdir(tmp_path)
    ours = run(*args)
    monkeypatch.setattr(cli, "quick_coercion", lambda param: None)
    theirs = run(*args)
    assert ours.exit_code == theirs.exit_code != 0
    assert (ours.stdout, ours.stderr) == (theirs.stdout, theirs.stderr)
    assert ours.stderr.count("\n") == 1  # one line


# Python's garbage collector around torch's first import (cli._imports_held): off while it loads, what it made
# frozen after, the collector as it was.
FIRST_IMPORT = r"""
import gc, sys
import t2i_cli.cli as cli
if sys.argv[1] == "off":
    gc.disable()
before = gc.get_freeze_count()
cli._imports_held("t2i_cli.pipeline")
print("torch" in sys.modules, before == 0, gc.get_freeze_count() > 1000, gc.isenabled())
"""


@pytest.mark.parametrize("state", ["on", "off"])
def test_first_torch_import_is_frozen(state, tmp_path):
    env = dict(os.environ, PYTHONPATH=SRC, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-c", FIRST_IMPORT, state], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    # torch's objects left out of later collections; a collector the process had turned off stays off
    assert r.stdout.split() == ["True", "True", "True", str(state == "on")]


def test_later_imports_freeze_nothing():
    """Where torch is already in (this test process, as any that runs commands in turn), nothing is frozen: each
    command's garbage would otherwise be kept for good."""
    import gc

    assert "torch" in sys.modules
    before, on = gc.get_freeze_count(), gc.isenabled()
    cli._imports_held("t2i_cli.pipeline")
    assert gc.get_freeze_count() == before and gc.isenabled() == on


def _generate_params():
    root = typer.main.get_command(cli.app)
    cmd = root.get_command(typer.Context(root, info_name="t2i"), "generate")
    ctx = typer.Context(cmd, info_name="generate")
    return ctx, {p.name: p for p in cmd.get_params(ctx)}


NUMBERISH = st.text(alphabet="0123456789-+._eE xn/", max_size=12)


@settings(max_examples=300, deadline=None)
@given(text=NUMBERISH, name=st.sampled_from(["n", "seed", "temperature", "guidance", "device", "out_dir", "image"]))
def test_quick_coercion_fuzzed_text(text, name):
    """Text of digits, signs, points, exponents, spaces and path characters, given to an int, a float, a str and
    two Path options of generate: QuickCoercion's value (or error) is Typer's own."""
    ctx, params = _generate_params()
    param = params[name]
    ours = _outcome(cli.QuickCoercion(param), text, param, ctx)
    theirs = _outcome(typer_coercion.build_runtime_param(param.type_descriptor), text, param, ctx)
    assert ours == theirs
