"""MkDocs hooks for the documentation site (named in mkdocs.yml; not part of the package).

The README is the repository's front page and lives outside ``docs/``; the site shows it as
the page ``overview.md``, generated from it at build time, so it is written once:

- in the README, links into ``docs/`` lose that prefix, and links to other repository files
  (``examples/chatbot.py``) become their plain text (the site has no copy of them);
- in the pages of ``docs/``, links to ``../README.md`` point at ``overview.md``.

``mkdocs build --strict`` then checks every one of those links and anchors.

The package's docstrings are written for Sphinx-style readers (``:class:`~redis_memory.X```);
in the rendered reference a role's name is dropped and the target shown as code (its last
dotted part when it starts with ``~``), as Sphinx would show it.

The API reference pages of the two packages other engineers grow module by module,
``redis_memory.migrations`` and ``redis_memory.integrations``, are generated too: one
mkdocstrings block per public module found in the package's directory, so a module appears
in the reference as soon as it exists (and a docstring mkdocstrings cannot render fails the
build).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
OVERVIEW = "overview.md"

_ROLE = re.compile(r":(?:class|meth|func|mod|attr|data|exc|obj):<code>(?P<tilde>~?)(?P<target>[^<]+)</code>")
_LINK = re.compile(r"\[(?P<text>[^\]]*)\]\((?P<target>[^)\s]+)\)")


def _readme_link(match: re.Match[str]) -> str:
    text, target = match["text"], match["target"]
    if target.startswith(("http://", "https://", "#", "mailto:")):
        return match[0]
    if target.startswith("docs/"):
        return f"[{text}]({target.removeprefix('docs/')})"
    return text


def readme_as_page() -> str:
    """The README's Markdown with its links made relative to ``docs/``."""
    return _LINK.sub(_readme_link, (ROOT / "README.md").read_text("utf-8"))


GENERATED_REFERENCE = {
    "reference/migrations.md": (
        "redis_memory.migrations",
        "Migrations",
        "Moving stored data from one shape to another; the `redis-memory` command line runs them.",
    ),
    "reference/integrations.md": (
        "redis_memory.integrations",
        "Integrations",
        "Each integration needs its extra (`[langgraph]`, `[langchain]`); the library itself imports none of them.",
    ),
}


def reference_page(package: str, title: str, intro: str) -> str:
    """A reference page: the package's docstring, then each public module of it, by name."""
    directory = ROOT.joinpath(*package.split("."))
    modules = sorted(p.stem for p in directory.glob("*.py") if not p.stem.startswith("_"))
    blocks = [f"::: {package}\n    options:\n      show_submodules: false"]
    blocks += [f"::: {package}.{module}" for module in modules]
    return f"# {title}\n\n{intro}\n\n" + "\n\n".join(blocks) + "\n"


def on_files(files: Files, config: Any) -> Files:
    """Add the README to the site as ``overview.md``, and the generated reference pages."""
    files.append(File.generated(config, OVERVIEW, content=readme_as_page()))
    for path, (package, title, intro) in GENERATED_REFERENCE.items():
        files.append(File.generated(config, path, content=reference_page(package, title, intro)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point the pages' links to the README at its page on the site."""
    return markdown.replace("](../README.md", f"]({OVERVIEW}")


def _role(match: re.Match[str]) -> str:
    target = match["target"]
    return f"<code>{target.rsplit('.', 1)[-1] if match['tilde'] else target}</code>"


def on_page_content(html: str, page: Any, config: Any, files: Files) -> str:
    """Show Sphinx roles of the docstrings (``:class:`~a.B```) as Sphinx does: ``B`` as code."""
    return _ROLE.sub(_role, html)
