"""Every relative link in the README and docs/ points at a file that exists, and at a heading of it.

Links are read the way GitHub renders them: text inside code fences and code spans is not a link,
and a heading's anchor is its text lower-cased, with punctuation dropped and spaces made hyphens
(a repeated heading gets ``-1``, ``-2``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: The documents users read from the repository's front page on.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "shared/schemas/README.md"]

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


@dataclass(frozen=True)
class BrokenLink:
    document: Path
    line: int
    target: str
    problem: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}: {self.target}: {self.problem}"


def _prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside code fences, with code spans blanked (they hold no links)."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, _CODE_SPAN.sub(lambda match: match[2].replace("]", " "), line)))
    return lines


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown text."""
    anchors: set[str] = set()
    for _, line in _prose_lines(text):
        heading = _HEADING.match(line)
        if heading is None:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading[2])  # a link's text, not its target
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        anchor, repeat = slug, 0
        while anchor in anchors:
            repeat += 1
            anchor = f"{slug}-{repeat}"
        anchors.add(anchor)
    return anchors


def broken_links(document: Path) -> list[BrokenLink]:
    """The relative links of ``document`` whose file, or whose anchor in a Markdown file, is missing."""
    text = document.read_text(encoding="utf-8")
    broken = []
    for number, line in _prose_lines(text):
        for target in _LINK.findall(line):
            if _EXTERNAL.match(target):
                continue
            path_part, _, anchor = target.partition("#")
            linked = (document.parent / path_part).resolve() if path_part else document
            if not linked.exists():
                broken.append(BrokenLink(document, number, target, "no such file"))
            elif anchor and linked.suffix == ".md" and anchor not in heading_anchors(linked.read_text()):
                broken.append(BrokenLink(document, number, target, f"no heading #{anchor} in {linked.name}"))
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(document: Path) -> None:
    # GIVEN a document of the README or docs/
    assert document.is_file()
    # WHEN its relative links are followed
    broken = broken_links(document)
    # THEN each names a file that exists, and a heading that exists where it names one
    assert not broken, "\n".join(str(link) for link in broken)


def test_the_readme_links_every_document_in_docs() -> None:
    # GIVEN the README and the Markdown files of docs/
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # WHEN the README's links are collected
    linked = {target.partition("#")[0] for _, line in _prose_lines(readme) for target in _LINK.findall(line)}
    # THEN every document in docs/ is reachable from it
    documents = [path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md")]
    unlinked = [document for document in documents if document not in linked]
    assert not unlinked, unlinked


def test_the_readme_gives_the_test_command_ci_runs() -> None:
    # GIVEN the command .ci/run ends with
    ci_command = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()[-1]
    # WHEN the README's quick start is read THEN it names that command
    assert ci_command == "make test"
    assert "make test" in (ROOT / "README.md").read_text(encoding="utf-8").split("## ", 2)[1]


def test_a_missing_file_and_a_missing_heading_are_reported(tmp_path: Path) -> None:
    # GIVEN a document linking a file that exists, one that does not, and headings present and absent
    (tmp_path / "other.md").write_text("# Other\n\n## The `make run` section: in short\n", encoding="utf-8")
    document = tmp_path / "doc.md"
    document.write_text(
        "# Doc\n\n"
        "[ok](other.md) [ok](other.md#the-make-run-section-in-short) [ok](#doc) [web](https://example.com/x)\n"
        "[gone](missing.md) [no heading](other.md#elsewhere) [no local heading](#nowhere)\n"
        "```\n[inside a fence](missing-too.md)\n```\n"
        "`[inside a code span](missing-three.md)`\n",
        encoding="utf-8",
    )
    # WHEN its links are checked
    broken = broken_links(document)
    # THEN exactly the three broken ones are reported, on their line, with what is missing
    assert [(link.line, link.target, link.problem) for link in broken] == [
        (4, "missing.md", "no such file"),
        (4, "other.md#elsewhere", "no heading #elsewhere in other.md"),
        (4, "#nowhere", "no heading #nowhere in doc.md"),
    ]


def test_repeated_headings_get_numbered_anchors() -> None:
    # GIVEN two headings with the same text, and one with punctuation and a link
    text = "# Notes\n\n## Setup\n\n## Setup\n\n## See [the docs](x.md), too!\n"
    # WHEN their anchors are computed THEN they are GitHub's
    assert heading_anchors(text) == {"notes", "setup", "setup-1", "see-the-docs-too"}
