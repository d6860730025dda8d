"""Stop lines and help text of the remaining commands (session 47, hH): each defect's test fails without its fix."""

from __future__ import annotations

import re

from conftest import run


def stopped(r) -> str:
    """A stopped command's one line (exit 130, no traceback)."""
    assert r.exit_code == 130, (r.exit_code, r.stdout, r.stderr, r.exception)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    return lines[0]


def test_every_commands_arguments_are_named_alike_in_help_and_errors():
    """`rerank --help` showed `{folder}` and `vary --help` `{source}` (Typer's lowercase parameter names), where
    export showed `{RUN}` and every docstring says FOLDER, SOURCE, PROMPT: each argument is now named in capitals,
    in the usage line, the Arguments list and a missing argument's error."""
    usage = {"generate": "[PROMPT]", "vary": "{SOURCE}", "info": "[FOLDER]", "export": "{RUN}...",
             "rerank": "{FOLDER}", "data preview": "[SOURCE]", "data caption": "{FOLDER}"}
    for command, name in usage.items():
        r = run(*command.split(), "--help")
        assert r.exit_code == 0, r.stderr
        line = next(line for line in r.stdout.splitlines() if line.startswith("Usage:"))
        assert line.endswith(f"{command} [OPTIONS] {name}"), line
        bare = name.strip("[]{}.")
        assert re.search(rf"^Arguments:\n  {bare} <", r.stdout, re.M), r.stdout
        assert not re.search(r"[\[{][a-z]+[\]}]", r.stdout.split("\n\n")[0]), r.stdout
    for command, name in (("vary", "SOURCE"), ("rerank", "FOLDER"), ("data caption", "FOLDER")):
        r = run(*command.split())
        assert r.exit_code == 2 and r.stderr.startswith(f"error: Missing argument '{name}'"), r.stderr
