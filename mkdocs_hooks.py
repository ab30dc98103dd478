"""MkDocs hooks for the documentation site (named in mkdocs.yml; not part of the package).

The README is the repository's front page and lives outside ``docs/``; the site shows it as
the page ``overview.md``, generated from it at build time, so it is written once:

- in the README, links into ``docs/`` lose that prefix, and links to other repository files
  (``examples/chatbot.py``) become their plain text (the site has no copy of them);
- in the pages of ``docs/``, links to ``../README.md`` point at ``overview.md``.

``mkdocs build --strict`` then checks every one of those links and anchors.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent
OVERVIEW = "overview.md"

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


def on_files(files: Files, config: Any) -> Files:
    """Add the README to the site as ``overview.md``."""
    files.append(File.generated(config, OVERVIEW, content=readme_as_page()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point the pages' links to the README at its page on the site."""
    return markdown.replace("](../README.md", f"]({OVERVIEW}")
