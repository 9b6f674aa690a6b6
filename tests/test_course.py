"""The course around the notebooks: every main notebook opens and closes the same way, and every link resolves."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
MAIN = sorted(NOTEBOOKS.glob("[0-9]*.ipynb"))
ASSIGNMENTS = sorted(p.name for p in (NOTEBOOKS / "assignments" / "source").iterdir() if p.is_dir())
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def markdown(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]


def section(text: str, title: str) -> str:
    """The body of ``## title`` up to the next ``## `` heading."""
    match = re.search(rf"(?ms)^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text)
    assert match, f"no '## {title}' section"
    return match.group(1)


def test_the_series_is_all_here():
    assert [p.name[:3].rstrip("_") for p in MAIN] == ["00", "01", "02", "03", "04", "05", "06", "06b", "07", "08",
                                                      "09", "10", "11"]


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.name[:3])
def test_every_notebook_says_what_it_assumes_and_ends_with_what_to_do_next(path):
    cells = markdown(path)
    top = cells[0]
    assert "**Before you start**" in top and "*Assumes:*" in top and "*Time:*" in top, path.name
    end = cells[-1]
    learned = section(end, "What you learned")
    assert learned.count("\n- ") + learned.startswith("- ") >= 3
    exercises = re.findall(r"(?m)^\d+\. ", section(end, "Exercises"))
    assert 3 <= len(exercises) <= 6, f"{path.name}: {len(exercises)} exercises"
    assert len(re.findall(r"(?m)^- ", section(end, "Further reading"))) >= 2
    where = section(end, "Where next")
    index = MAIN.index(path)
    if index > 0:
        assert "**Previous:** [" in where and f"({MAIN[index - 1].name})" in where
    if index + 1 < len(MAIN):
        assert f"({MAIN[index + 1].name})" in where
    assert "**Practise:**" in where and "GLOSSARY.md" in where


def _claimed_seconds(top: str) -> float:
    """The upper bound of "its cells run in ..." in seconds (a generous reading of the words)."""
    claim = re.search(r"its cells run in (a few seconds|under a minute|about a minute|about (\d+) minutes)", top)
    assert claim, "no run-time claim"
    words, minutes = claim.groups()
    return {"a few seconds": 15, "under a minute": 60, "about a minute": 90}.get(words) or 1.5 * 60 * int(minutes)


@pytest.mark.parametrize("path", MAIN, ids=lambda p: p.name[:3])
def test_the_run_time_a_notebook_claims_is_the_time_its_saved_run_took(path):
    """The saved outputs come from a full-profile run whose cells carry their execution times."""
    stamps = [c["metadata"]["execution"] for c in json.loads(path.read_text())["cells"]
              if c["cell_type"] == "code" and "execution" in c.get("metadata", {})]
    if not stamps:
        pytest.skip(f"{path.name} was saved without execution times")
    start = datetime.fromisoformat(stamps[0]["iopub.execute_input"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(stamps[-1]["shell.execute_reply"].replace("Z", "+00:00"))
    assert (end - start).total_seconds() <= _claimed_seconds(markdown(path)[0]), path.name


def test_the_course_map_lists_every_notebook_and_assignment():
    map_cell = next(c for c in markdown(MAIN[0]) if c.startswith("## 2. Map of the series"))
    for path in MAIN:
        assert f"({path.name})" in map_cell, path.name
    for folder in ASSIGNMENTS:
        assert f"| {folder.split('_')[0]} · " in map_cell, folder
    assert "### A four-week module" in map_cell and "GLOSSARY.md" in map_cell


def test_the_glossary_defines_the_series_terms():
    glossary = (NOTEBOOKS / "GLOSSARY.md").read_text()
    terms = ["Leave-one-out", "Full ranking", "HR@K", "NDCG@K", "MRR", "k-core", "Causal mask", "Padding mask",
             "autocast", "GradScaler", "Gradient accumulation", "Sampled ranking", "Validation split"]
    for term in terms:
        assert re.search(rf"(?m)^- \*\*[^*]*{re.escape(term)}", glossary, re.IGNORECASE), term
    # every entry names the notebook that explains it, and that notebook exists
    for number in re.findall(r"\[(\d\db?)(?:, \d\db?)*\]$", glossary, re.MULTILINE):
        assert any(p.name.startswith(f"{number}_") for p in MAIN), number


def _documents():
    yield from ((p, "\n".join(markdown(p))) for p in MAIN)
    for path in [NOTEBOOKS / "GLOSSARY.md", NOTEBOOKS / "assignments" / "README.md"]:
        yield path, path.read_text()


def test_every_relative_link_resolves():
    checked = 0
    for path, text in _documents():
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # web addresses and anchors
            assert (path.parent / target.split("#")[0]).exists(), f"{path.name}: broken link {target}"
            checked += 1
    assert checked > 50
