"""The course assignments through nbgrader: student versions, what students see, and autograding.

nbgrader generates the student versions from ``notebooks/assignments/source`` into a
temporary course folder (never under notebooks/), with the repository's
``nbgrader_config.py``. Everything runs in-process and on the local file system: no
Jupyter server, no exchange, no Docker.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the assignment tests need nbgrader: pip install -e '.[test]'")

from nbclient import NotebookClient  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402
from nbgrader.apps import NbGraderAPI  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402
from nbgrader.plugins import CsvExportPlugin  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

# nbgrader 0.9 warns about its own use of SQLAlchemy 2.1 sessions while autograding; harmless
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "notebooks" / "assignments"
ASSIGNMENTS = sorted(path.name for path in (COURSE / "source").iterdir() if path.is_dir())
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def source_notebook(assignment: str) -> tuple[str, nbformat.NotebookNode]:
    (path,) = (COURSE / "source" / assignment).glob("*.ipynb")
    return path.name, nbformat.read(path, as_version=4)


def solution_lines(cell) -> list[str]:
    """The non-blank code lines between a solution cell's BEGIN/END SOLUTION markers."""
    inside, lines = False, []
    for line in cell.source.splitlines():
        if SOLUTION_MARKERS.match(line):
            inside = "BEGIN" in line
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def solved(cell) -> str:
    """What a student who wrote the reference answer submits: the solution without its markers."""
    return "\n".join(line for line in cell.source.splitlines() if not SOLUTION_MARKERS.match(line))


def points(notebook) -> dict[str, float]:
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
            for c in notebook.cells if nbgrader_meta(c).get("grade")}


def test_the_course_has_the_four_assignments():
    assert ASSIGNMENTS == ["a1_ranking_metrics", "a2_markov_chain", "a3_attention_masks", "a4_training_step"]
    for assignment in ASSIGNMENTS:
        _, notebook = source_notebook(assignment)
        graded = [c for c in notebook.cells if nbgrader_meta(c).get("grade")]
        answers = [c for c in notebook.cells if nbgrader_meta(c).get("solution")]
        assert answers and len(graded) == len(answers), assignment  # one graded check per exercise
        assert all(HIDDEN.search(c.source) for c in graded), assignment  # every check has hidden tests
        assert all(solution_lines(c) for c in answers), assignment


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with the sources, the repository's nbgrader config, and the generated release."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(COURSE / "source", root / "source")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    config.CourseDirectory.root = str(root)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for assignment in ASSIGNMENTS:
        result = api.generate_assignment(assignment)
        assert result["success"], result.get("log")
    return root, api


def released(root: Path, assignment: str) -> tuple[Path, nbformat.NotebookNode]:
    name, _ = source_notebook(assignment)
    path = root / "release" / assignment / name
    return path, nbformat.read(path, as_version=4)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_has_no_solution_code_and_no_hidden_tests(course, assignment):
    root, _ = course
    _, source = source_notebook(assignment)
    path, student = released(root, assignment)
    text = path.read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert marker not in text
    lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    by_id = {nbgrader_meta(c)["grade_id"]: c for c in student.cells if nbgrader_meta(c)}
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            stub = by_id[meta["grade_id"]].source
            assert "raise NotImplementedError()" in stub
            assert not lines & set(solution_lines(cell)), meta["grade_id"]
        elif meta.get("grade"):
            hidden = HIDDEN.search(cell.source).group(0)
            visible = HIDDEN.sub("", cell.source).strip()
            assert by_id[meta["grade_id"]].source.strip() == visible
            assert not lines & {line.strip() for line in hidden.splitlines()[1:-1]}, meta["grade_id"]
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def output_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_version_runs_top_to_bottom_and_its_checks_teach(course, assignment):
    root, _ = course
    path, _ = released(root, assignment)
    notebook = execute(path)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            assert output.get("name") != "stderr", output.text  # nbgrader scores stderr output as a failure
    checks = [c for c in notebook.cells if nbgrader_meta(c).get("grade")]
    for cell in checks:
        function = nbgrader_meta(cell)["grade_id"].removeprefix("check_")
        text = output_text(cell)
        assert f"✗ {function} is not answered yet" in text
        assert "Replace `raise NotImplementedError()`" in text
        assert "Traceback" not in text


def submit(root: Path, student: str, assignment: str, answer: bool) -> None:
    """Put a submission where nbgrader collects them: the release, with or without the reference answers."""
    name, source = source_notebook(assignment)
    _, notebook = released(root, assignment)
    answers = {nbgrader_meta(c)["grade_id"]: solved(c) for c in source.cells if nbgrader_meta(c).get("solution")}
    if answer:
        for cell in notebook.cells:
            if nbgrader_meta(cell).get("solution"):
                cell.source = answers[nbgrader_meta(cell)["grade_id"]]
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


def test_autograding_gives_full_marks_to_a_solved_submission_and_zero_to_an_unsolved_one(course, tmp_path):
    root, api = course
    for assignment in ASSIGNMENTS:
        submit(root, "solved", assignment, answer=True)
        submit(root, "unsolved", assignment, answer=False)
        for student in ("solved", "unsolved"):
            result = api.autograde(assignment, student)
            assert result["success"], result.get("log")

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            name, source = source_notebook(assignment)
            notebook_id = name.removesuffix(".ipynb")
            expected = points(source)
            assert sum(expected.values()) > 0
            full = gradebook.find_submission(assignment, "solved")
            empty = gradebook.find_submission(assignment, "unsolved")
            assert full.max_score == empty.max_score == sum(expected.values())
            assert full.score == sum(expected.values()), assignment
            assert empty.score == 0, assignment
            for grade_id in expected:
                assert gradebook.find_grade(grade_id, notebook_id, assignment, "unsolved").score == 0

        export = tmp_path / "grades.csv"
        CsvExportPlugin(to=str(export)).export(gradebook)
    rows = {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(export.open())}
    for assignment in ASSIGNMENTS:
        assert rows[(assignment, "solved")] == sum(points(source_notebook(assignment)[1]).values())
        assert rows[(assignment, "unsolved")] == 0

    # the unsolved checks fail with the teaching message, not with the stub's NotImplementedError,
    # and the feedback shows that message but not the hidden tests' code (nbgrader_config.py)
    for assignment in ASSIGNMENTS:
        name, _ = source_notebook(assignment)
        graded = nbformat.read(root / "autograded" / "unsolved" / assignment / name, as_version=4)
        errors = [o for c in graded.cells if nbgrader_meta(c).get("grade") for o in c.outputs
                  if o.output_type == "error"]
        assert errors and all(o.ename == "CheckFailed" and "not answered yet" in o.evalue for o in errors)
        result = api.generate_feedback(assignment, "unsolved")
        assert result["success"], result.get("log")
        feedback = (root / "feedback" / "unsolved" / assignment / name.replace(".ipynb", ".html")).read_text()
        assert "not answered yet" in feedback and "HIDDEN TESTS" not in feedback and "strict=True" not in feedback
