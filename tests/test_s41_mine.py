"""Fixes of the closing rounds of session 41, each with the input that showed it."""

from __future__ import annotations

import pytest

from t2i_cli.name_captions import caption_of


@pytest.mark.parametrize("name, caption", [
    ("100%BEEF", "100%beef"), ("ACE%DEAL", "ace%deal"),  # a percent sign in a name in capitals, not an escape
    ("caf%E9", "café"), ("CR%C8ME", "crème"), ("%E9t%E9", "été"), ("caf%E9s", "cafés"),  # Windows' escapes still read
])
def test_a_percent_sign_in_a_name_in_capitals_is_not_read_as_a_windows_escape(name, caption):
    assert caption_of(name) == caption


def _pictures(folder, *names):
    from PIL import Image

    for i, name in enumerate(names):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40 * i % 256, 90, 200 - 30 * i % 200)).save(folder / name)
    return folder


def test_a_folders_metadata_jsonl_whose_first_line_is_no_json_object_is_read_its_line_counted(tmp_path):
    """A metadata.jsonl that does not open with a manifest's object is read all the same (its reader counts the
    bad line): taken for no manifest, its pictures were pictures without a caption and nothing said why."""
    from t2i_cli import data

    ds = _pictures(tmp_path / "ds", "a.png", "b.png")
    (ds / "metadata.jsonl").write_text('not json\n{"file_name": "a.png", "text": "a red square"}\n'
                                       '{"file_name": "b.png", "text": "a blue square"}\n')
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    assert sorted(got.captions_at(i)[0] for i in range(len(got))) == ["a blue square", "a red square"]
    assert "line 1" in (got.skipped_message() or "")


def test_a_manifest_in_another_sub_folder_is_not_named_beside_pictures_it_could_not_name(tmp_path):
    """Pictures without a caption in a/ are named beside a manifest only where one sits in a/ or above it: b/'s
    metadata.jsonl (whose paths are relative to b/) cannot name them and is not offered."""
    from t2i_cli import data

    ds = _pictures(tmp_path / "ds", "a/x.png", "b/y.png", "b/z.png")
    (ds / "b" / "metadata.jsonl").write_text('{"file_name": "y.png", "text": "a red square"}\n'
                                             '{"file_name": "z.png", "text": "a blue square"}\n')
    got = data.open_source(str(ds), 16, val_fraction=0.0)
    said = got.skipped_message() or ""
    assert "without .txt caption" in said and "metadata.jsonl" not in said
    (ds / "b" / "w.png").write_bytes((ds / "a" / "x.png").read_bytes())  # beside it now: named
    (ds / "a" / "x.png").unlink()
    said = data.open_source(str(ds), 16, val_fraction=0.0).skipped_message() or ""
    assert str(ds / "b" / "metadata.jsonl") in said


FINALIZED = """
import os, signal, sys, time
from t2i_cli.__main__ import entry  # (the `t2i` command's entry)


class StopAtTeardown:
    def __del__(self):  # while Python's finalization tears the modules down, after every atexit callback
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)


keep = StopAtTeardown()
sys.argv = ["t2i", "info", sys.argv[1]]
entry()
"""


def test_a_stop_while_python_tears_a_command_down_ends_it_with_the_commands_exit_code(tmp_path):
    """A training run stopped by its loader worker's SIGTERM (a kill of each of its processes) said its line and
    saved its steps, and the main process's own SIGTERM then came as Python tore torch down, after its finalization
    had put back the default action: the process ended as killed (exit 143). Now ignored there: the command's
    code."""
    import subprocess
    import sys

    from conftest import build_tiny_folder

    weights = build_tiny_folder(tmp_path / "w")
    r = subprocess.run([sys.executable, "-c", FINALIZED, str(weights)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, (r.returncode, r.stderr[-2000:])
    assert "tiny" in r.stdout or "transformer" in r.stdout  # info said what it says
