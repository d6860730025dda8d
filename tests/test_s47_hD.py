"""Small CLI input and message leftovers (session 47, hD): each defect's test fails without its fix."""

from __future__ import annotations

import json

from conftest import build_tiny_folder, run
from test_reliability import TINY


def test_a_path_typed_dot_slash_dash_is_said_as_typed_in_info_and_its_hints(tmp_path, monkeypatch):
    """`T2I_WEIGHTS=./- t2i info --json` said "folder": "-" (standard input's name), and `t2i info ./-w` said its
    run "-w" and "t2i export TRANSFORMER_RUN -w --to WEIGHTS_DIR", an option where pasted; `--out ./-` kept its
    "./" since 0.20.0. Now each is said as typed, and a run named -w given as `-- -w` is said ./-w in its hint."""
    monkeypatch.chdir(tmp_path)
    build_tiny_folder(tmp_path / "-")
    monkeypatch.setenv("T2I_WEIGHTS", "./-")
    r = run("info", "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["folder"] == "./-"
    r = run("info")
    assert r.exit_code == 0 and r.stdout.startswith("./-  (identity"), r.stdout
    monkeypatch.delenv("T2I_WEIGHTS")

    r = run("train", "--stage", "clip", "--steps", "2", "--out", "./-w", "--tokenizer", "./-", *TINY)
    assert r.exit_code == 0, r.stderr
    hint = "export it beside a transformer run: t2i export TRANSFORMER_RUN ./-w --to WEIGHTS_DIR"
    r = run("info", "./-w")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("./-w: a clip run") and f"next      {hint}" in r.stdout, r.stdout
    r = run("info", "./-w", "--json")
    assert json.loads(r.stdout)["folder"] == "./-w" and json.loads(r.stdout)["next"] == hint
    r = run("info", "--", "-w")  # (typed without ./: its hint still names the folder, not an option)
    assert r.exit_code == 0 and f"next      {hint}" in r.stdout, r.stdout
