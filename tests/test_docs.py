"""The README and docs/: every relative link and anchor resolves, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCED = re.compile(r"^```.*?^```", flags=re.S | re.M)


def links(path: Path) -> list[str]:
    """Targets of the Markdown links and images, `[text](target)` and `![alt](target "title")`, outside code."""
    prose = re.sub(r"`[^`]*`", "", FENCED.sub("", path.read_text()))
    return re.findall(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", prose)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a file's headings: lowercase, punctuation (backticks too) dropped but '-' and '_',
    spaces to '-'; a repeated heading gets -1, -2, ..."""
    slugs: set[str] = set()
    counts: dict[str, int] = {}
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCED.sub("", path.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        n = counts[slug] = counts.get(slug, -1) + 1
        slugs.add(f"{slug}-{n}" if n else slug)
    return slugs


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(page):
    broken = []
    for target in links(page):
        if re.match(r"(https?|mailto):", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (page.parent / file).resolve() if file else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor} in {dest.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 160
