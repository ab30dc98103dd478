"""The documentation site builds: ``mkdocs build --strict`` (mkdocs.yml), offline, into a tmp dir.

--strict turns every warning into a failure: a nav entry or a link to a missing page or
anchor, a page left out of the nav, a docstring mkdocstrings cannot render. The build must
not reach the network (no web fonts, no downloaded inventories): the built pages must not
reference an external stylesheet, font or script either.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PAGES = [
    "index.html",
    "quickstart/index.html",
    "overview/index.html",
    "flows/index.html",
    "llm-clients/index.html",
    "multi-agent/index.html",
    "storage/index.html",
    "benchmarks/index.html",
    "benchmark-append.png",
    "reference/memory/index.html",
    "reference/errors/index.html",
    "reference/migrations/index.html",
    "reference/integrations/index.html",
    "search/search_index.json",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # The test's own REDIS_* must not matter: building renders docstrings, it never runs code.
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    return out, build


def test_the_site_builds_with_no_warning(site: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, build = site
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr


@pytest.mark.parametrize("page", PAGES)
def test_key_pages_are_built(site: tuple[Path, subprocess.CompletedProcess[str]], page: str) -> None:
    out, build = site
    assert build.returncode == 0, build.stderr
    assert (out / page).is_file(), f"{page} is not in the built site"


def test_the_api_reference_is_rendered_from_docstrings(site: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = site
    html = (out / "reference/memory/index.html").read_text("utf-8")
    assert 'id="redis_memory.ConversationMemory"' in html
    # A docstring of the package, as written in redis_memory/memory.py.
    assert "compare_and_set" in html
    # Sphinx roles of the docstrings are shown as Sphinx shows them, never as ":class:".
    assert "<code>ReplicationError</code>" in html
    assert ":class:" not in html


def test_the_generated_reference_pages_list_the_package_modules(
    site: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = site
    html = (out / "reference/integrations/index.html").read_text("utf-8")
    for module in sorted((ROOT / "redis_memory/integrations").glob("[!_]*.py")):
        assert f'id="redis_memory.integrations.{module.stem}"' in html, module.name


def test_the_readme_is_a_page_with_its_links_rewritten(site: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = site
    html = (out / "overview/index.html").read_text("utf-8")
    assert 'href="../usage/"' in html
    assert 'href="docs/' not in html


def test_the_pages_load_nothing_from_the_network(site: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = site
    external = re.compile(r"""<(?:link|script|img)\b[^>]*(?:href|src)=["']https?://""")
    offenders = [str(p.relative_to(out)) for p in out.rglob("*.html") if external.search(p.read_text("utf-8"))]
    assert offenders == []
