"""The README's guarantees point at tests that exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def guarantees() -> str:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("<!-- section: guarantees (reliability) -->")
    end = readme.index("<!-- section:", start + 1)
    return readme[start:end]


def test_every_guarantee_names_an_existing_test() -> None:
    section = guarantees()
    promises = section.split("### What the library cannot promise")[0]
    bullets = [b for b in re.split(r"\n(?=- |\*\*)", promises) if b.startswith(("- ", "**"))]
    headings = [b for b in bullets if b.startswith("**") and b.strip().count("\n") == 0]
    unnamed = [b[:60] for b in bullets if b not in headings and not REFERENCE.search(b)]
    assert not unnamed, unnamed
    references = REFERENCE.findall(section)
    assert len(references) >= 20
    for path, name in references:
        source = (ROOT / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"{path}::{name}"
