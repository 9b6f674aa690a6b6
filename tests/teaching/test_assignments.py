"""The course assignments: the student release, what students see, and grading with nbgrader.

``python -m recnb assignments release`` builds the student release from
``notebooks/assignments/source`` into a temporary folder; the student notebooks run there with
recnb installed from the release's wheel alone. nbgrader grades in a second temporary course
folder with the repository's ``nbgrader_config.py``. Everything runs on the local file system:
no Jupyter server, no exchange, no Docker.
"""

from __future__ import annotations

import contextlib
import csv
import html
import io
import re
import shutil
import subprocess
import sys
import zipfile
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

from recnb.cli import main  # noqa: E402
from tests.helpers import REPO  # noqa: E402

# nbgrader 0.9 warns about its own use of SQLAlchemy 2.1 sessions while autograding; harmless
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

COURSE = REPO / "notebooks" / "assignments"
ASSIGNMENTS = sorted(path.name for path in (COURSE / "source").iterdir() if path.is_dir())
SOLUTION_MARKERS = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def is_check(cell) -> bool:
    """An autograded test cell (a check), as opposed to a written answer graded by hand."""
    return bool(nbgrader_meta(cell).get("grade")) and not nbgrader_meta(cell).get("solution")


def is_written(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade")) and bool(nbgrader_meta(cell).get("solution"))


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


def points(notebook, which=lambda cell: True) -> dict[str, float]:
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
            for c in notebook.cells if nbgrader_meta(c).get("grade") and which(c)}


def instructor_only_lines(assignment: str) -> set[str]:
    """Lines students must never see: hidden tests, and every line of the model answers with their rubrics."""
    _, source = source_notebook(assignment)
    lines = set()
    for cell in source.cells:
        if is_check(cell):
            hidden = HIDDEN.search(cell.source).group(0).splitlines()[1:-1]
            # a lone ")" or "name," (a wrapped import) tells nothing; two words or more can
            lines |= {line.strip() for line in hidden if re.search(r"\w\W+\w", line)}
        if is_written(cell):
            lines |= {line.strip() for line in cell.source.splitlines() if len(line.strip()) > 20}
    return lines - {""}


# ----------------------------------------------------------------------------- the sources
def test_the_course_has_six_assignments_two_with_written_answers_and_a_rubric_in_the_guide():
    assert ASSIGNMENTS == ["a1_ranking_metrics", "a2_markov_chain", "a3_attention_masks", "a4_training_step",
                           "a5_protocol", "a6_ablation"]
    guide = (COURSE / "README.md").read_text()
    with_written = []
    for assignment in ASSIGNMENTS:
        _, notebook = source_notebook(assignment)
        checks = [c for c in notebook.cells if is_check(c)]
        answers = [c for c in notebook.cells if nbgrader_meta(c).get("solution") and c.cell_type == "code"]
        assert answers and len(checks) == len(answers), assignment  # one graded check per exercise
        assert all(HIDDEN.search(c.source) for c in checks), assignment  # every check has hidden tests
        assert all(solution_lines(c) for c in answers), assignment
        written = [c for c in notebook.cells if is_written(c)]
        if written:
            with_written.append(assignment)
            for cell in written:  # a markdown answer graded by hand, with points, a model answer and its rubric
                meta = nbgrader_meta(cell)
                assert cell.cell_type == "markdown" and meta["points"] > 0 and not meta["locked"]
                assert cell.source.startswith("**Model answer.**") and "*Rubric (" in cell.source
                assert f"`{meta['grade_id']}` ({meta['points']:g} points)" in guide  # the rubric in the guide
    assert with_written == ["a5_protocol", "a6_ablation"]


# ----------------------------------------------------------------------------- the release
@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The student release, built by the documented command: (folder, zip, what the command printed)."""
    folder = tmp_path_factory.mktemp("handout") / "course-release"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder.parent)  # the command as the guide writes it, with a relative --out
        assert main(["assignments", "release", "--out", "course-release", "--zip"]) == 0
    return folder, folder.with_name("course-release.zip"), printed.getvalue()


def test_the_release_command_writes_the_student_folder_and_zip(release):
    folder, archive, printed = release
    (wheel,) = folder.glob("recnb-*-py3-none-any.whl")
    notebooks = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.ipynb"))
    assert notebooks == [f"{a}/{source_notebook(a)[0]}" for a in ASSIGNMENTS]
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == ["README.md", wheel.name]
    assert all(n in printed for n in notebooks) and "not the repository" in printed
    with zipfile.ZipFile(archive) as handout:
        assert sorted(handout.namelist()) == sorted(f"course-release/{p.relative_to(folder).as_posix()}"
                                                    for p in folder.rglob("*") if p.is_file())
    readme = (folder / "README.md").read_text()
    assert f"pip install {wheel.name}" in readme and "$wheel" not in readme and "$assignments" not in readme
    for assignment in ASSIGNMENTS:
        assert f"`{assignment}/`" in readme


def test_the_release_refuses_to_write_over_anything(release, capsys):
    folder, archive, _ = release
    assert main(["assignments", "release", "--out", str(folder)]) == 2
    assert "already exists" in capsys.readouterr().err
    fresh = folder.with_name("other")
    (fresh.with_name("other.zip")).write_text("mine")
    assert main(["assignments", "release", "--out", str(fresh), "--zip"]) == 2
    assert "other.zip already exists" in capsys.readouterr().err and not fresh.exists()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_student_notebook_has_no_solution_no_hidden_test_and_no_model_answer(release, assignment):
    folder, _, _ = release
    name, source = source_notebook(assignment)
    student = nbformat.read(folder / assignment / name, as_version=4)
    text = (folder / assignment / name).read_text()
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "Model answer", "Rubric"):
        assert marker not in text
    lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    by_id = {nbgrader_meta(c)["grade_id"]: c for c in student.cells if nbgrader_meta(c)}
    for cell in source.cells:
        meta = nbgrader_meta(cell)
        if is_written(cell):
            assert by_id[meta["grade_id"]].source == "YOUR ANSWER HERE"
        elif meta.get("solution"):
            assert "raise NotImplementedError()" in by_id[meta["grade_id"]].source
            assert not lines & set(solution_lines(cell)), meta["grade_id"]
        elif meta.get("grade"):
            assert by_id[meta["grade_id"]].source.strip() == HIDDEN.sub("", cell.source).strip()
    assert not lines & instructor_only_lines(assignment)
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")


def test_nothing_in_the_release_holds_a_hidden_test_a_model_answer_or_an_importable_solution(release):
    folder, _, _ = release
    (wheel,) = folder.glob("*.whl")
    secret = set().union(*(instructor_only_lines(a) for a in ASSIGNMENTS))
    solutions = {line for a in ASSIGNMENTS for c in source_notebook(a)[1].cells
                 if nbgrader_meta(c).get("solution") and c.cell_type == "code" for line in solution_lines(c)}
    with zipfile.ZipFile(wheel) as package:
        members = {name: package.read(name).decode() for name in package.namelist()}
    # the wheel is recnb's own package and nothing else: no notebook, no module from notebooks/assignments
    modules = {name for name in members if not name.startswith("recnb-")}
    assert modules == {p.relative_to(REPO).as_posix() for p in (REPO / "recnb").rglob("*.py")}
    texts = {**{f"{wheel.name}:{name}": text for name, text in members.items()},
             **{p.name: p.read_text() for p in folder.rglob("*") if p.suffix in (".md", ".ipynb")}}
    for where, text in texts.items():
        held = {line.strip() for line in text.splitlines()}
        assert not held & secret, where
        if not where.startswith(wheel.name):  # recnb's own implementations are the library, refused by the checks
            assert not held & solutions, where


@pytest.fixture(scope="module")
def student_site(release, tmp_path_factory):
    """The release's wheel installed on its own, as a student installs it (its dependencies are already here)."""
    folder, _, _ = release
    site = tmp_path_factory.mktemp("student-site")
    (wheel,) = folder.glob("*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(site), str(wheel)], check=True)
    return site


def execute(path: Path, extra_cells: tuple[str, ...] = ()) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in extra_cells]
    NotebookClient(notebook, timeout=300, allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return notebook


def output_text(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_student_notebook_runs_top_to_bottom_with_the_release_alone(release, student_site, assignment,
                                                                         monkeypatch):
    folder, _, _ = release
    monkeypatch.setenv("PYTHONPATH", str(student_site))  # the kernel imports recnb from the release's wheel
    name, _ = source_notebook(assignment)
    notebook = execute(folder / assignment / name, ("import recnb\nprint(recnb.__file__)",))
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{output.ename}: {output.evalue}"
            assert output.get("name") != "stderr", output.text  # nbgrader scores stderr output as a failure
    assert output_text(notebook.cells[-1]).startswith(str(student_site))
    checks = [c for c in notebook.cells if is_check(c)]
    for cell in checks:
        function = nbgrader_meta(cell)["grade_id"].removeprefix("check_")
        text = output_text(cell)
        assert f"✗ {function} is not answered yet" in text
        assert "Replace `raise NotImplementedError()`" in text
        assert "Traceback" not in text


# ----------------------------------------------------------------------------- grading
@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course folder with the sources, the repository's nbgrader config, and the generated student versions."""
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(COURSE / "source", root / "source")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(COURSE)).load_config()
    config.CourseDirectory.root = str(root)
    api = NbGraderAPI(CourseDirectory(config=config), config=config)
    for assignment in ASSIGNMENTS:
        result = api.generate_assignment(assignment)
        assert result["success"], result.get("log")
    return root, api


def submit(root: Path, student: str, assignment: str, answers: dict[str, str] | None = None) -> None:
    """Put a submission where nbgrader collects them: the student version with the given answers filled in."""
    name, _ = source_notebook(assignment)
    notebook = nbformat.read(root / "release" / assignment / name, as_version=4)
    for cell in notebook.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if nbgrader_meta(cell).get("solution") and grade_id in (answers or {}):
            cell.source = answers[grade_id]
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, folder / name)


def reference_answers(assignment: str) -> dict[str, str]:
    """The instructor's answers: the solution code and the model answers."""
    _, source = source_notebook(assignment)
    return {nbgrader_meta(c)["grade_id"]: solved(c) for c in source.cells if nbgrader_meta(c).get("solution")}


@pytest.fixture(scope="module")
def graded(course):
    """Every assignment autograded for a student with the reference answers and one who answered nothing."""
    root, api = course
    for assignment in ASSIGNMENTS:
        submit(root, "solved", assignment, reference_answers(assignment))
        submit(root, "unsolved", assignment)
        for student in ("solved", "unsolved"):
            result = api.autograde(assignment, student)
            assert result["success"], result.get("log")
    return root, api


def test_autograding_gives_full_marks_to_a_solved_submission_and_zero_to_an_unsolved_one(graded, tmp_path):
    root, _ = graded
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for assignment in ASSIGNMENTS:
            name, source = source_notebook(assignment)
            notebook_id = name.removesuffix(".ipynb")
            automatic, by_hand = points(source, is_check), points(source, is_written)
            full = gradebook.find_submission(assignment, "solved")
            empty = gradebook.find_submission(assignment, "unsolved")
            assert full.max_score == empty.max_score == sum(automatic.values()) + sum(by_hand.values())
            assert full.score == sum(automatic.values()), assignment  # the written answers wait for a grader
            assert empty.score == 0 and not empty.needs_manual_grade, assignment  # unchanged answers score 0
            for grade_id in automatic:
                assert gradebook.find_grade(grade_id, notebook_id, assignment, "unsolved").score == 0
            for grade_id, value in by_hand.items():  # the instructor grades the written answers with the rubric
                grade = gradebook.find_grade(grade_id, notebook_id, assignment, "solved")
                assert grade.needs_manual_grade and grade.auto_score is None and grade.max_score == value
                grade.manual_score = value
            gradebook.db.commit()
            assert gradebook.find_submission(assignment, "solved").score == full.max_score, assignment

        export = tmp_path / "grades.csv"
        CsvExportPlugin(to=str(export)).export(gradebook)
    rows = {(row["assignment"], row["student_id"]): float(row["score"]) for row in csv.DictReader(export.open())}
    for assignment in ASSIGNMENTS:
        assert rows[(assignment, "solved")] == sum(points(source_notebook(assignment)[1]).values())
        assert rows[(assignment, "unsolved")] == 0


def test_an_unsolved_submission_fails_with_the_teaching_message_and_its_feedback_shows_no_test_code(graded):
    root, api = graded
    for assignment in ASSIGNMENTS:
        name, _ = source_notebook(assignment)
        autograded = nbformat.read(root / "autograded" / "unsolved" / assignment / name, as_version=4)
        errors = [o for c in autograded.cells if is_check(c) for o in c.outputs if o.output_type == "error"]
        assert errors and all(o.ename == "CheckFailed" and "not answered yet" in o.evalue for o in errors)
    result = api.generate_feedback("a1_ranking_metrics", "unsolved")
    assert result["success"], result.get("log")
    feedback = (root / "feedback" / "unsolved" / "a1_ranking_metrics" / "ranking_metrics.html").read_text()
    assert "not answered yet" in feedback and "HIDDEN TESTS" not in feedback and "strict=True" not in feedback


#: A submission that is right on the visible inputs and wrong on the grader's (printing its inputs to see
#: them), and one that passes through recnb's own implementation; mrr is answered properly.
TRICKS = {
    "hit_rate": "def hit_rate(ranks, k):\n    print('peeking at', ranks.tolist(), k)\n"
                "    return float((ranks <= k).double().mean()) if len(ranks) <= 6 else 0.0",
    "ndcg": "from recnb.evaluation.metrics import metrics_from_ranks\n\n\ndef ndcg(ranks, k):\n"
            "    return metrics_from_ranks(ranks, (k,))[f'NDCG@{k}']",
}


def test_a_shortcut_through_recnb_scores_zero_and_feedback_hides_the_hidden_inputs(course):
    root, api = course
    name, source = source_notebook("a1_ranking_metrics")
    submit(root, "tricks", "a1_ranking_metrics", {**reference_answers("a1_ranking_metrics"), **TRICKS})
    result = api.autograde("a1_ranking_metrics", "tricks")
    assert result["success"], result.get("log")
    autograded = nbformat.read(root / "autograded" / "tricks" / "a1_ranking_metrics" / name, as_version=4)
    errors = {nbgrader_meta(c)["grade_id"]: [o for o in c.outputs if o.output_type == "error"]
              for c in autograded.cells if is_check(c)}
    (refused,) = errors["check_ndcg"]
    assert "✗ ndcg calls recnb.evaluation.metrics." in refused.evalue
    assert "The point of the exercise is to write it yourself" in refused.evalue
    assert errors["check_hit_rate"] and not errors["check_mrr"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        score = gradebook.find_submission("a1_ranking_metrics", "tricks").score
    assert score == points(source)["check_mrr"]

    result = api.generate_feedback("a1_ranking_metrics", "tricks")
    assert result["success"], result.get("log")
    feedback = html.unescape((root / "feedback" / "tricks" / "a1_ranking_metrics" / name.replace(".ipynb", ".html"))
                             .read_text())
    hidden_inputs = HIDDEN.search(next(c.source for c in source.cells
                                       if nbgrader_meta(c).get("grade_id") == "check_hit_rate")).group(0)
    assert "[7] * 9 + [1]" in hidden_inputs  # the input the function fails on, which feedback must not show
    assert "✗ hit_rate: " in feedback and "Hint: HR@K is the share" in feedback
    assert "This happened on one of the grader's hidden inputs. They are not shown" in feedback
    assert "peeking at [1] 1" in feedback  # what it printed on a visible input
    assert "The point of the exercise is to write it yourself" in feedback
    for shown in ("7, 7, 7", "[7] * 9", "Smallest failing input", "strict=True", "HIDDEN TESTS"):
        assert shown not in feedback
