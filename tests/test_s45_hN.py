"""Session 45, hN: review of the session's run/CLI/API changes (each test fails without its fix)."""

from __future__ import annotations

import numpy as np
import pytest

from t2i_cli.models.classifier import JudgeConfig, ObjectClassifier
from t2i_cli.world import evaluate as ev
from t2i_cli.world import judge as jd
from t2i_cli.world import tasks

SMALL = JudgeConfig(crop=24, widths=(16, 32, 32))


class SeenJudge(jd.Judge):
    """A judge that says yes to everything and keeps a sum of each picture it was shown."""

    def __init__(self):
        super().__init__(ObjectClassifier(SMALL))
        self.seen: list[int] = []

    def passes(self, task, image, spec):
        self.seen.append(int(np.asarray(image, dtype=np.int64).sum()))
        return True

    def check(self, image, spec):
        return {c: True for checks in tasks.TASK_CHECKS.values() for c in checks}


def test_validate_judge_refuses_a_seed_eval_refuses_and_takes_numpys_as_the_same_seed():
    # (validate_judge did not check its seed: True rendered other scenes than seed 1's, 1.5 and -1 scenes that
    # `t2i eval --seed` never renders, all without a word; evaluate_model refused them)
    for seed in (True, 1.5, -1, 2 ** 63, "3", np.bool_(True)):
        judge = SeenJudge()
        with pytest.raises(ValueError, match=r"seed must be a whole number in 0\.\.2\*\*63-1"):
            ev.validate_judge(judge, 1, seed, 32)
        assert judge.seen == []  # (refused before any scene is rendered)
    plain, numpys = SeenJudge(), SeenJudge()
    assert ev.validate_judge(plain, 1, 5, 32) == ev.validate_judge(numpys, 1, np.int64(5), 32)
    assert plain.seen == numpys.seen and len(plain.seen) == 2 * len(tasks.TASKS)


def test_the_lines_a_command_prints_name_a_path_typed_as_dot_slash_dash_as_typed(tmp_path, monkeypatch):
    # (the refusals said `--out ./-` as typed, but the lines of what was written said the absolute path t2i makes of
    # it: "wrote 1 scene to /home/me/-", "wrote /home/me/-/preview.png")
    from conftest import run

    monkeypatch.chdir(tmp_path)
    r = run("data", "world", "--n", "1", "--side", "32", "--out", "./-")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "wrote 1 scene to ./-" and str(tmp_path) not in r.output
    assert (tmp_path / "-").is_dir()
    r = run("data", "preview", "./-", "--out", "./-")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "wrote ./-/preview.png" and str(tmp_path) not in r.output
    assert (tmp_path / "-" / "preview.png").is_file()
    r = run("data", "world", "--n", "1", "--side", "32", "--out", "w")  # (a later command forgets ./-)
    assert r.exit_code == 0 and r.stdout.strip() == "wrote 1 scene to w"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["generate", "--help"], ["data", "caption", "--help"]])
def test_help_and_version_stay_torch_free_and_are_no_refusal_of_an_omp_num_threads_openmp_cannot_read(args):
    # (every command now checks OpenMP's environment as it starts, info, export and data too: their --help and
    # `t2i --version` must still answer, and load no torch, as t2i --help is pinned to: BENCHMARKS.md cold start)
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[1] / "src")
    code = ("import sys\nfrom t2i_cli.cli import app\ntry:\n    app(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    print('exit', e.code, 'torch' in sys.modules, file=sys.stderr)\n")
    env = {**os.environ, "OMP_NUM_THREADS": "abc", "PYTHONPATH": src}
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    assert r.stderr.strip().splitlines()[-1] == "exit 0 False", r.stderr
    assert "OMP_NUM_THREADS" not in r.stderr and r.stdout.strip()
