"""Every ```python block of README.md and docs/**/*.md runs, against real redis-server processes.

Blocks are found and run by sybil (its Markdown parsers), not by a parser of our own:

- A ```python block runs as code. The blocks of one file run in order in one shared namespace
  (a module named ``__docs__``, registered in ``sys.modules`` for the run), so a later block
  can use the names an earlier one defined, and a class a block defines is found again when a
  stored value is read back.
- Printed output is checked by writing the block doctest-style: a ```python block whose first
  line starts with ``>>>`` runs as a doctest, and the lines after each ``>>>`` statement are the
  output it must print (sybil's doctest checker; ``...`` is an ellipsis). Blocks that only
  assert keep plain code; a block that shows output uses this form instead of comments.
- ``<!-- skip: next -->`` on the line before a block leaves it out (sybil's skip directive;
  ``<!-- skip: next "why" -->`` records a reason; each ``>>>`` of a doctest block is an example
  of its own, so such a block is left out between ``<!-- skip: start -->`` and
  ``<!-- skip: end -->``; the earlier marker ``<!-- no-test -->`` still means
  ``<!-- skip: next -->``). Keep those rare (another machine, a shell
  session), and say why nearby. A fence with more words than ``python`` (```python skip) is
  not a Python block for sybil and is not run either.

``REDIS_URL`` points at the fixture's server and ``REDIS_PREFIX`` is fresh for each run, so a
block that writes ``ConversationMemory("c1")`` with no connection arguments reaches the test
server, never the embedded one. Each file runs twice: on a server with RedisJSON + RediSearch
and on one without. The files are parsed here, in one parametrized test per file, so nothing
is collected twice and pytest's own collection of .md files stays off.
"""

from __future__ import annotations

import doctest
import re
import sys
import types
import unittest
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sybil import Document, Region, Sybil
from sybil.evaluators.skip import Skipper
from sybil.parsers.markdown import PythonCodeBlockParser, SkipParser

from tests.servers import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DOC_FILES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
# API reference pages are generated from docstrings (mkdocstrings) and hold no code of their own.
GENERATED = DOCS / "reference"

_SKIP = SkipParser()
_NO_TEST = re.compile(r"^<!-- no-test -->[ \t]*$", re.MULTILINE)


def no_test_parser(document: Document) -> Iterator[Region]:
    """The earlier marker ``<!-- no-test -->``, read as ``<!-- skip: next -->`` (same skipper)."""
    for match in _NO_TEST.finditer(document.text):
        yield Region(match.start(), match.end(), ("next", None), _SKIP.skipper)


SYBIL = Sybil(
    parsers=[PythonCodeBlockParser(doctest_optionflags=doctest.ELLIPSIS), _SKIP, no_test_parser],
    path=str(ROOT),
)


def parse(path: Path) -> Document:
    """The sybil document of one Markdown file: its Python blocks and skip directives, in order."""
    return SYBIL.parse(path)


def runs_code(path: Path) -> bool:
    """Whether ``path`` has at least one Python block (code or doctest) no skip directive covers."""
    skipping, skip_one = False, False
    for example in parse(path):
        if _is_skip(example.region.evaluator):
            action = example.parsed[0]
            skipping, skip_one = action == "start", action == "next"
        elif skip_one:
            skip_one = False
        elif not skipping:
            return True
    return False


def _is_skip(evaluator: object) -> bool:
    return isinstance(evaluator, Skipper)


def _ids(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def test_blocks_are_found_in_order_with_skips(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "\n".join(
            [
                "```python",
                "a = 1",
                "```",
                "<!-- skip: next -->",
                "",
                "```python",
                "raise SystemExit",
                "```",
                "```python skip",
                "raise SystemExit",
                "```",
                "```text",
                "raise SystemExit",
                "```",
                "```python",
                "b = a + 1",
                "```",
                "```python",
                ">>> print(b * 10)",
                "20",
                "```",
            ]
        )
        + "\n",
        "utf-8",
    )
    document = parse(page)
    kinds = ["skip" if _is_skip(e.region.evaluator) else type(e.region.evaluator).__name__ for e in document]
    assert kinds == ["PythonEvaluator", "skip", "PythonEvaluator", "PythonEvaluator", "DocTestEvaluator"]
    lines = [example.line for example in document]
    assert lines == [1, 4, 6, 15, 19]
    _evaluate(document)
    assert document.namespace["b"] == 2


def test_a_skip_with_a_reason_leaves_the_block_out(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        '<!-- skip: next "needs a GPU" -->\n\n```python\nraise SystemExit\n```\n'
        "<!-- no-test -->\n```python\nraise SystemExit\n```\n",
        "utf-8",
    )
    document = parse(page)
    assert not runs_code(page)
    _evaluate(document)


def test_printed_output_is_checked(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\n>>> print(1 + 1)\n3\n```\n", "utf-8")
    with pytest.raises(AssertionError, match="Expected"):
        _evaluate(parse(page))


def test_a_failing_block_names_its_line_in_the_page(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text.\n\n```python\nx = 1\nassert x == 2\n```\n", "utf-8")
    with pytest.raises(AssertionError) as failure:
        _evaluate(parse(page))
    assert any(entry.path == page and entry.lineno + 1 == 5 for entry in failure.traceback)


def _evaluate(document: Document) -> None:
    """Run every example of ``document`` in order; a skipped block is passed over."""
    for example in document:
        try:
            example.evaluate()
        except unittest.SkipTest:
            continue


@pytest.mark.parametrize("path", [p for p in DOC_FILES if GENERATED not in p.parents], ids=_ids)
def test_every_doc_file_has_python_blocks(path: Path) -> None:
    assert path.exists(), f"{path} is missing"
    assert runs_code(path), f"{path.name} has no ```python block that runs"


@pytest.mark.parametrize("path", DOC_FILES, ids=_ids)
def test_doc_code_blocks_run(path: Path, server: RedisProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_PREFIX", f"doc{uuid.uuid4().hex[:10]}:")
    monkeypatch.delenv("REDIS_HOST", raising=False)
    monkeypatch.delenv("REDIS_PORT", raising=False)
    # Should a block bypass REDIS_URL, it must fail here rather than start a server in $HOME.
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDIS_MEMORY_SERVER", str(tmp_path / "no-embedded-server-in-doc-tests"))
    monkeypatch.chdir(tmp_path)
    document = parse(path)
    # The blocks run in a module registered in sys.modules, as a user's script runs in __main__:
    # an Enum or pydantic model a block defines is found again when it is read back.
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    document.namespace = module.__dict__
    _evaluate(document)
