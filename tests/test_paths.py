"""No committed file names a place on the machine it was written on.

Notebook outputs and docs are read on other machines, where ``/home/<someone>/...``
means nothing and tells a stranger how somebody's disk is laid out. This test
scans every git-tracked text file (notebooks with their outputs included) for an
absolute home, work or temporary path, and every notebook for a mention of a file
outside the repository. The patterns are assembled from pieces, so this file does
not match itself.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Files that are not text, skipped by their extension (a NUL byte also marks a file as binary).
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".pdf", ".pt", ".pth", ".zip", ".gz", ".npz", ".npy",
                   ".pkl", ".parquet", ".ico", ".woff", ".woff2"}

_ROOTS = "|".join(["ho" + "me", "wo" + "rk", "t" + "mp", "ro" + "ot", "Us" + "ers"])
#: ``/home/<x>``, ``/work/<x>``, ``/tmp/<x>``, ``/root/<x>``, ``/Users/<x>`` where a path starts (not inside a URL or a
#: relative path such as ``data/tmp/x``; after an escaped newline or tab as in JSON), and ``<drive>:\Users\``.
ABSOLUTE_PATH = re.compile(r"(?:(?<![\w.:/~-])|(?<=\\[nrt]))/(?:" + _ROOTS + r")/[\w.~-]"
                           + "|" + r"(?:\b|(?<=\\[nrt]))[A-Za-z]:\\{1,2}" + "Us" + r"ers\\")
#: Files outside the repository that a learner does not have.
OUTSIDE_REPOSITORY = re.compile("|".join(re.escape(s) for s in ["../" + "shared", "PERF" + "_NOTES", "STY" + "LE.md"]))


def tracked_files(root: Path = REPO) -> list[Path]:
    """The files git tracks in ``root``, as absolute paths (those deleted in the work tree left out)."""
    result = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True)
    paths = [root / name for name in result.stdout.decode().split("\0") if name]
    return [path for path in paths if path.is_file()]


def text_of(path: Path) -> str | None:
    """The file's text, or None for a binary file."""
    if path.suffix.lower() in BINARY_SUFFIXES:
        return None
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def notebook_strings(notebook: dict) -> list[tuple[str, str]]:
    """Every text of a notebook with where it is: ``("cell 3 source", text)``, ``("cell 3 output", text)``.

    Image data and widget state are skipped: they are base64 or machine state, not text a learner reads.
    """
    found = []

    def walk(value, where):
        if isinstance(value, str):
            found.append((where, value))
        elif isinstance(value, list):
            if value and all(isinstance(part, str) for part in value):
                found.append((where, "".join(value)))  # a multi-line source or output, as nbformat stores it
            else:
                for part in value:
                    walk(part, where)
        elif isinstance(value, dict):
            for key, part in value.items():
                if key.startswith("image/") or "widget" in key:
                    continue
                walk(part, where)

    for index, cell in enumerate(notebook.get("cells", [])):
        walk(cell.get("source", ""), f"cell {index} source")
        walk(cell.get("outputs", []), f"cell {index} output")
    walk(notebook.get("metadata", {}), "metadata")
    return found


def problems_in(path: Path, root: Path = REPO) -> list[str]:
    """One line per absolute path (any text file) or outside-repository mention (notebooks only)."""
    text = text_of(path)
    if text is None:
        return []
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    problems = []
    if path.suffix == ".ipynb":
        for where, value in notebook_strings(json.loads(text)):
            for pattern, kind in ((ABSOLUTE_PATH, "absolute path"),
                                  (OUTSIDE_REPOSITORY, "file outside the repository")):
                lines = sorted({value[: match.start()].count("\n") + 1 for match in pattern.finditer(value)})
                for line in lines:
                    context = value.splitlines()[line - 1].strip()[:100]
                    problems.append(f"{name}, {where}, line {line}: {kind}: {context}")
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if ABSOLUTE_PATH.search(line):
                problems.append(f"{name}:{number}: absolute path: {line.strip()[:100]}")
    return problems


@pytest.fixture(scope="module")
def files() -> list[Path]:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: there is no list of tracked files to scan")
    try:
        return tracked_files()
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"git could not list the tracked files: {error}")


def test_no_tracked_file_names_a_machine_path_or_a_file_outside_the_repository(files):
    assert any(path.suffix == ".ipynb" for path in files), "the scan found no notebook: wrong folder?"
    problems = [problem for path in files for problem in problems_in(path)]
    assert not problems, "\n".join(["paths of a machine or files outside the repository:", *problems])


# --------------------------------------------------------------------------- the scanner itself
def absolute(*parts: str) -> str:
    """An absolute path assembled at run time, so that this file holds none."""
    return "/" + "/".join(parts)


@pytest.mark.parametrize("path", [absolute("ho" + "me", "ana", "x.csv"), absolute("wo" + "rk", "main"),
                                  absolute("t" + "mp", "evil.txt"), absolute("ro" + "ot", ".cache"),
                                  absolute("Us" + "ers", "bo", "data"), "C:\\" + "Us" + "ers\\bo\\data"])
def test_scanner_finds_an_absolute_path_in_a_text_file(tmp_path, path):
    script = tmp_path / "script.py"
    script.write_text(f'"""Docs."""\nDATA = {path!r}\nLINES = "first\\n{path}"\n')
    problems = problems_in(script, tmp_path)
    assert problems[0] == f"script.py:2: absolute path: DATA = {path!r}"
    assert [problem.split(":")[1] for problem in problems] == ["2", "3"]  # also right after an escaped newline


@pytest.mark.parametrize("text", ["see https://example.org/home/page", "data/tmp/x.csv", "RECNB_DATA_DIR=path/to/data",
                                  "<data>/ml-1m/movies.dat", "~/work/notes", "checkpoints/sasrec.pt"])
def test_scanner_leaves_urls_and_relative_paths_alone(tmp_path, text):
    readme = tmp_path / "README.md"
    readme.write_text(text + "\n")
    assert problems_in(readme, tmp_path) == []


def test_scanner_finds_paths_in_notebook_sources_and_outputs(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# Title\nThe data sit in `" + absolute("ho" + "me", "ana", "data") + "`."),
        nbformat.v4.new_code_cell("print(data_dir)", outputs=[
            nbformat.v4.new_output("stream", name="stdout",
                                   text="data folder:\n" + absolute("wo" + "rk", "data") + "\n"),
            nbformat.v4.new_output("display_data", data={"image/png": "iVBOR" + absolute("t" + "mp", "x")}),
        ]),
        nbformat.v4.new_markdown_cell("Timings are in ../" + "shared/notes.md."),
    ]
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    problems = problems_in(path, tmp_path)
    assert len(problems) == 3, problems  # the image data is not scanned
    assert problems[0].startswith("nb.ipynb, cell 0 source, line 2: absolute path")
    assert problems[1].startswith("nb.ipynb, cell 1 output, line 2: absolute path")
    assert problems[2].startswith("nb.ipynb, cell 2 source, line 1: file outside the repository")


def test_binary_files_are_skipped(tmp_path):
    blob = tmp_path / "weights.bin"
    blob.write_bytes(b"\0\1" + absolute("ho" + "me", "x").encode())
    image = tmp_path / "figure.png"
    image.write_bytes(absolute("ho" + "me", "x").encode())
    assert problems_in(blob, tmp_path) == [] and problems_in(image, tmp_path) == []


def test_tracked_files_lists_what_git_tracks(tmp_path):
    try:
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, capture_output=True)
        (tmp_path / "kept.md").write_text("x\n")
        (tmp_path / "untracked.md").write_text("y\n")
        subprocess.run(["git", "-C", str(tmp_path), "add", "kept.md"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"git is not usable here: {error}")
    assert tracked_files(tmp_path) == [tmp_path / "kept.md"]
