"""Every relative link in the project's Markdown names a file a fresh clone has: a newcomer
who follows one from the README must not land on a file that exists only on the machine
that wrote it (an ignored bench output, a build directory)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
# [text](target) and [text](target "title"); images too.
LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def tracked_files() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return {name for name in listed.split("\0") if name}


def text_of(document: str) -> str:
    return FENCE.sub("", (ROOT / document).read_text(encoding="utf-8"))


def relative_links(document: str) -> list[tuple[str, str]]:
    """(file, anchor) of each link that is not a URL; file "" is the document itself."""
    targets = []
    for target in LINK.findall(text_of(document)):
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target):
            path, _, anchor = target.partition("#")
            targets.append((path, anchor))
    return targets


def anchors(document: str) -> set[str]:
    """The ids GitHub gives a document's headings: lower case, punctuation dropped, spaces
    to hyphens, a repeated one numbered."""
    seen: dict[str, int] = {}
    ids = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text_of(document), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}-{count}")
    return ids


def resolved(document: str, target: str) -> str:
    parts: list[str] = []
    for part in (PurePosixPath(document).parent / target).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def test_every_relative_link_in_the_docs_names_a_tracked_file_and_heading() -> None:
    tracked = tracked_files()
    directories = {str(PurePosixPath(name).parent) for name in tracked}
    documents = sorted(name for name in tracked if name.endswith(".md"))
    assert "README.md" in documents
    broken = []
    for document in documents:
        for path, anchor in relative_links(document):
            target = resolved(document, path) if path else document
            if target not in tracked | directories:
                broken.append(f"{document}: {path} (not in the repository)")
            elif anchor and (not target.endswith(".md") or anchor not in anchors(target)):
                broken.append(f"{document}: {path}#{anchor} (no such heading)")
    assert broken == []
