"""The layout's import rule (README "Design"): imports point down the tiers, never up, and never in a cycle.

    cli       the command line: Typer, Rich, printing, exit codes
    product   pipeline, image_prompt, outputs, prompt_file, rerank, data, data_eval, train, train_options, stages,
              recipe, run_info: the tool
    world     t2i_cli.world.*: the procedural world, its judge and its evaluation
    core      weights, sampling, sampling_config, devices, images, files, errors, name_captions
    models    t2i_cli.models.*: torch (and tokenizers) only, no other t2i module

A module may import t2i modules of its own tier or a lower one, never a higher one, and the whole graph is
acyclic. Third-party packages stay where the README says: only cli imports typer or rich, only weights
touches safetensors, only images and the world touch PIL.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "t2i_cli"
TIERS = ("models", "core", "world", "product", "cli")  # lowest first
TIER_OF = {
    "t2i_cli": "models",  # the package root holds only __version__
    "t2i_cli.__main__": "cli", "t2i_cli.cli": "cli",
    **{f"t2i_cli.{m}": "product"
       for m in ("pipeline", "outputs", "rerank", "data", "data_eval", "train", "train_options", "stages",
                 "recipe", "image_prompt", "prompt_file", "run_info")},
    **{f"t2i_cli.{m}": "core"
       for m in ("weights", "sampling", "sampling_config", "devices", "images", "files", "errors", "name_captions")},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def tier(module: str) -> str:
    if module.startswith("t2i_cli.models.") or module == "t2i_cli.models":
        return "models"
    if module.startswith("t2i_cli.world.") or module == "t2i_cli.world":
        return "world"
    if module not in TIER_OF:
        raise AssertionError(f"{module} has no tier: add it to TIER_OF here and to the README's Design section")
    return TIER_OF[module]


def resolve(name: str) -> str:
    """`from t2i_cli.world import judge` imports the module t2i_cli.world.judge, not a name in the package."""
    path = SRC.joinpath(*name.split("."))
    return name if path.with_suffix(".py").is_file() or path.is_dir() else name.rpartition(".")[0]


def imports(path: Path) -> tuple[set[str], set[str]]:
    """(t2i modules, top-level third-party or stdlib packages) a module imports, lazily imported ones too."""
    own, other = set(), set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "t2i_cli":
                own |= {resolve(f"{node.module}.{a.name}") for a in node.names}
            else:
                other.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            for a in node.names:
                (own if a.name.split(".")[0] == "t2i_cli" else other).add(
                    a.name if a.name.startswith("t2i_cli") else a.name.split(".")[0])
    return own, other - {"__future__"}


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_tier():
    assert len(GRAPH) > 20
    for module in GRAPH:
        tier(module)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down_the_tiers(module):
    mine = TIERS.index(tier(module))
    up = [m for m in GRAPH[module][0] if TIERS.index(tier(m)) > mine]
    assert not up, f"{module} ({tier(module)}) imports the higher tier: {up}"


def test_the_import_graph_has_no_cycle():
    state: dict[str, str] = {}

    def visit(m: str, path: list[str]) -> None:
        if state.get(m) == "done":
            return
        assert state.get(m) != "open", f"import cycle: {' -> '.join(path + [m])}"
        state[m] = "open"
        for dep in sorted(GRAPH.get(m, (set(), set()))[0] - {m}):
            if dep != "t2i_cli" or m == "t2i_cli":  # every module sits below the package root's __init__
                visit(dep, path + [m])
        state[m] = "done"

    for m in sorted(GRAPH):
        visit(m, [])


def test_models_import_only_torch_tokenizers_and_the_standard_library():
    for module, (own, other) in GRAPH.items():
        if tier(module) == "models" and module != "t2i_cli":
            assert not own, f"{module} imports t2i modules {own}; a model file stands alone"
            assert other <= {"torch", "tokenizers"} | set(sys.stdlib_module_names), f"{module}: {other}"


@pytest.mark.parametrize("package, allowed", [
    ("typer", {"t2i_cli.cli"}), ("rich", {"t2i_cli.cli"}), ("safetensors", {"t2i_cli.weights"}),
    ("PIL", {"t2i_cli.images", *(m for m in GRAPH if m.startswith("t2i_cli.world"))}),
])
def test_third_party_packages_stay_in_their_module(package, allowed):
    users = {m for m, (_, other) in GRAPH.items() if package in other}
    assert users and users <= allowed, f"{package} is imported by {sorted(users - allowed)}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The rule is not vacuous: a model file importing the pipeline is caught as an upward import."""
    fake = tmp_path / "t2i_cli" / "models" / "bad.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("from t2i_cli.pipeline import TextToImage\nimport typer\n")
    own, other = imports(fake)
    assert own == {"t2i_cli.pipeline"} and other == {"typer"}
    assert TIERS.index(tier("t2i_cli.pipeline")) > TIERS.index(tier("t2i_cli.models.bad"))
