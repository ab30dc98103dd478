"""The shape of the house: one-way imports, no import cycles, no module over 600 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 600


def test_the_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph("redis_memory", include_external_packages=False)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(importer=imported, imported=module):
                cycles.append((module, imported))
    assert cycles == []


def test_no_module_is_over_600_lines() -> None:
    files = [path for folder in ("redis_memory", "tests", "bench") for path in (ROOT / folder).rglob("*.py")]
    assert len(files) > 40
    long = {
        str(path.relative_to(ROOT)): n for path in files if (n := len(path.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_layer_contracts_hold() -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_design_doc_names_every_module_once() -> None:
    design = (ROOT / "docs" / "design.md").read_text("utf-8")
    table = design[design.index("| module | its one responsibility |") :].split("\n\n", 1)[0]
    named = {name.strip("` ") for row in table.splitlines()[2:] for name in row.split("|")[1].split(",")}
    package = ROOT / "redis_memory"
    modules = {
        str(path.relative_to(package).with_suffix("")).removesuffix("/__init__") or "__init__"
        for path in package.rglob("*.py")
    } - {"aio", "core", "proxies", "search"}  # packages: their modules are named instead
    assert named == modules


def test_make_run_installs_only_what_running_needs(tmp_path: Path) -> None:
    def planned(target: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    run = planned("run")
    assert "-e '.[server]'" in run and "dev" not in run and "examples/chatbot.py" in run
    assert "-e '.[server,dev]'" in planned("test")
