"""Every ```python block of README.md and docs/*.md runs, against real redis-server processes.

The blocks of one file run in order in one shared namespace (a module named ``__docs__``,
registered in ``sys.modules`` for the run), so a later block can use the names an earlier one
defined, and a class a block defines is found again when a stored value is read back.
``REDIS_URL`` points at the fixture's server and ``REDIS_PREFIX`` is fresh for each run, so a
block that writes ``ConversationMemory("c1")`` with no connection arguments reaches the test
server, never the embedded one. Each file runs twice: on a server with RedisJSON + RediSearch
and on one without.

A block is left out when its fence reads ```python skip, or when the line before it is
``<!-- no-test -->``; keep those rare (another machine, a shell session), and say why nearby.
"""

from __future__ import annotations

import re
import sys
import types
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import RedisProcess

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NO_TEST = "<!-- no-test -->"

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block: its language, flags, first code line (1-based) and text."""

    language: str
    flags: tuple[str, ...]
    line: int
    code: str
    skipped: bool


def code_blocks(text: str) -> list[Block]:
    """Every fenced code block of a Markdown text, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence, words = opening["fence"], opening["info"].split()
        start = index + 1
        end = start
        while end < len(lines) and not re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[end]):
            end += 1
        previous = next((line.strip() for line in reversed(lines[:index]) if line.strip()), "")
        language = words[0].lower() if words else ""
        flags = tuple(words[1:])
        body = "\n".join(line[len(opening["indent"]) :] for line in lines[start:end])
        blocks.append(Block(language, flags, start + 1, body + "\n", "skip" in flags or previous == NO_TEST))
        index = end + 1
    return blocks


def python_blocks(path: Path) -> list[Block]:
    """The ```python blocks of ``path`` that are meant to run."""
    return [block for block in code_blocks(path.read_text("utf-8")) if block.language == "python" and not block.skipped]


def test_code_blocks_are_found() -> None:
    sample = "\n".join(
        [
            "```python",
            "a = 1",
            "```",
            "<!-- no-test -->",
            "",
            "```python",
            "raise SystemExit",
            "```",
            "```python skip",
            "raise SystemExit",
            "```",
            "````bash",
            "```python",
            "````",
            "```python",
            "b = a + 1",
            "```",
        ]
    )
    blocks = code_blocks(sample)
    assert [(b.language, b.line, b.skipped) for b in blocks] == [
        ("python", 2, False),
        ("python", 7, True),
        ("python", 10, True),
        ("bash", 13, False),
        ("python", 16, False),
    ]
    assert blocks[-1].code == "b = a + 1\n"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_doc_file_has_python_blocks(path: Path) -> None:
    assert path.exists(), f"{path} is missing"
    assert python_blocks(path), f"{path.name} has no ```python block that runs"


@pytest.mark.parametrize("path", DOC_FILES, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_doc_code_blocks_run(path: Path, server: RedisProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)
    monkeypatch.setenv("REDIS_PREFIX", f"doc{uuid.uuid4().hex[:10]}:")
    monkeypatch.delenv("REDIS_HOST", raising=False)
    monkeypatch.delenv("REDIS_PORT", raising=False)
    # Should a block bypass REDIS_URL, it must fail here rather than start a server in $HOME.
    monkeypatch.setenv("REDIS_MEMORY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REDIS_MEMORY_SERVER", str(tmp_path / "no-embedded-server-in-doc-tests"))
    monkeypatch.chdir(tmp_path)
    # The blocks run in a module registered in sys.modules, as a user's script runs in __main__:
    # an Enum or pydantic model a block defines is found again when it is read back.
    module = types.ModuleType("__docs__")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    for block in python_blocks(path):
        # Padding with blank lines makes tracebacks point at the block's lines in the .md file.
        code = compile("\n" * (block.line - 1) + block.code, str(path), "exec")
        exec(code, namespace)
