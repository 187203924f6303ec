"""The course's editions: the student's holds no solution, the instructor's every one, each
solution opening with a sentence that answers its question; the HTML folds them."""

import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from tdexplain.workbook import editions, report

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


def _hidden(notebook) -> list[list]:
    """The runs of consecutive solution cells: the exercises' solutions and the answers to the
    check-your-understanding questions."""
    runs, run = [], []
    for cell in notebook.cells + [None]:
        if cell is not None and editions.is_solution(cell):
            run.append(cell)
        elif run:
            runs.append(run)
            run = []
    return runs


def _solutions(notebook) -> list[list]:
    """The exercises' solutions."""
    return [run for run in _hidden(notebook) if run[0].source.startswith("### Solution")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_summary_asks_questions_whose_answers_are_hidden(path):
    cells = nbformat.read(path, as_version=4).cells
    summary = next(i for i, c in enumerate(cells) if c.source.startswith("## Summary\n"))
    questions, answers = cells[summary + 1], cells[summary + 2]
    assert questions.source.startswith("### Check your understanding") and not editions.is_solution(questions)
    assert answers.source.startswith("#### Answers") and editions.is_solution(answers)
    assert answers.metadata["jupyter"]["source_hidden"] is True
    assert cells[summary + 3].source.startswith("## Exercises")  # the summary closes the notebook's body
    numbered = [re.findall(r"^(\d+)\. ", cell.source, flags=re.M) for cell in (questions, answers)]
    assert numbered[0] == numbered[1] == [str(n) for n in range(1, len(numbered[0]) + 1)] and len(numbered[0]) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_solution_opens_with_a_sentence_that_answers(path):
    notebook = nbformat.read(path, as_version=4)
    runs = _solutions(notebook)
    exercises = [c for c in notebook.cells if c.cell_type == "markdown" and c.source.startswith("### Exercise")]
    assert len(runs) == len(exercises)
    for number, run in enumerate(runs, start=1):
        heading, _, answer = run[0].source.partition("\n\n")
        assert run[0].cell_type == "markdown" and heading == f"### Solution {number}", run[0].source[:80]
        assert answer.startswith("**Answer.** ") and len(answer.split(". ")[0]) > 40, answer[:80]
        assert [cell.cell_type for cell in run[1:]] == ["code"] * (len(run) - 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_student_edition_holds_no_solution_text(path, tmp_path):
    written = editions.write_editions(path, tmp_path)
    student = nbformat.read(written["student"], as_version=4)
    instructor = nbformat.read(written["instructor"], as_version=4)
    original = nbformat.read(path, as_version=4)
    deeper = "](../../"  # the editions sit one folder deeper: their links to the repository get one more ../
    for theirs, ours in zip(instructor.cells, original.cells):
        worded = ours.source.replace(editions.WHERE_SOLUTIONS_ARE, editions.FOR_INSTRUCTORS[editions.WHERE_SOLUTIONS_ARE])
        assert (theirs.source, theirs.get("outputs")) == (worded.replace("](../", deeper), ours.get("outputs"))
        assert not theirs.metadata.get("jupyter", {}).get("source_hidden"), "the instructor sees every solution"
    assert len(instructor.cells) == len(original.cells)
    kept = [cell for cell in original.cells if not editions.is_solution(cell)]
    assert len(student.cells) == len(kept)
    assert [cell.source for cell in student.cells if cell.cell_type == "code"] == [
        cell.source for cell in kept if cell.cell_type == "code"]
    said = "\n".join(cell.source for cell in student.cells)
    for instructors, students in editions.FOR_STUDENTS.items():  # each notebook says both, once
        assert instructors not in said and students in said
    assert "answer key" not in said and "hidden in these notebooks" not in said
    assert "shown under it in this edition" in "\n".join(cell.source for cell in instructor.cells)
    links = [link for cell in student.cells for link in cell.source.split("](")[1:]]
    student_folder = path.parents[1] / "reports" / "student"  # where make report writes it
    assert all(Path(os.path.normpath(student_folder / link.split(")")[0])).exists()
               for link in links if link.startswith("../")), links
    assert [cell.get("outputs") for cell in student.cells] == [cell.get("outputs") for cell in kept]
    text = json.dumps(student)
    for run in _hidden(original):
        for cell in run:
            for line in cell.source.splitlines():
                if len(line.strip()) > 25 and not any(line.strip() in c.source for c in kept):
                    assert line.strip() not in text, (path.name, line)


def test_the_report_folds_each_solution_behind_a_click(tmp_path):
    path = next(p for p in NOTEBOOKS if _solutions(nbformat.read(p, as_version=4)))
    notebook = nbformat.read(path, as_version=4)
    (tmp_path / path.name).write_text(nbformat.writes(notebook))
    page = report._to_html(tmp_path / path.name).read_text()
    runs = _hidden(notebook)
    assert page.count("<details>") == len(runs) > len(_solutions(notebook)) > 0
    for run in runs:
        heading, _, answer = run[0].source.partition("\n\n")
        assert f"<summary><b>{heading.lstrip('# ')}</b>" in page
        words = answer.removeprefix("**Answer.** ").removeprefix("1. ")[:30]  # past the markdown
        assert page.index("<details>") < page.index(words) < page.rindex("</details>")


def test_make_report_writes_both_editions_and_the_instructor_page(tmp_path):
    """A rendered notebook with an exercise: the student edition keeps its output and question
    but not the solution's answer or output; the instructor edition and page have them."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    notebooks, out = tmp_path / "nb", tmp_path / "reports"
    notebooks.mkdir()
    solution = {"tags": [editions.SOLUTION], "jupyter": {"source_hidden": True}}
    nbformat.write(new_notebook(cells=[
        new_code_cell("print('the course', 6 * 7)"),
        new_markdown_cell("### Exercise 1\n\nWhat is six times seven, computed?"),
        new_code_cell("# your answer here"),
        new_markdown_cell("### Solution 1\n\n**Answer.** Forty-two, the number the cell prints.", metadata=solution),
        new_code_cell("print('secret', 6 * 7)", metadata=solution),
    ]), notebooks / "01_tiny.ipynb")
    [rendered] = report.render_all(notebooks, out)
    assert rendered.error is None
    student = (out / "student" / "01_tiny.ipynb").read_text()
    instructor = (out / "instructor" / "01_tiny.ipynb").read_text()
    assert "the course 42" in student and "What is six times seven" in student
    assert "secret" not in student and "Forty-two" not in student
    assert "secret 42" in instructor and "Forty-two" in instructor
    page = (out / "instructor" / "README.md").read_text()
    assert "| 01_tiny | " in page and "Forty-two, the number the cell prints." in page
    html = (out / "01_tiny.html").read_text()
    assert html.index("<details>") < html.index("secret 42") < html.index("</details>")
    handout = (out / "student" / "01_tiny.html").read_text()  # the page to hand out
    assert "the course 42" in handout and "secret" not in handout and "Forty-two" not in handout


def test_a_failed_or_unreadable_notebook_gets_no_edition_and_the_others_still_do(tmp_path):
    from nbformat.v4 import new_code_cell, new_notebook

    notebooks, out = tmp_path / "nb", tmp_path / "reports"
    notebooks.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("print('fine')")]), notebooks / "01_fine.ipynb")
    nbformat.write(new_notebook(cells=[new_code_cell("raise RuntimeError('broken here')")]),
                   notebooks / "02_broken.ipynb")
    (notebooks / "03_garbled.ipynb").write_text("{not json")
    results = report.render_all(notebooks, out)
    assert [r.error is None for r in results] == [True, False, False]
    assert (out / "student" / "01_fine.ipynb").exists()
    assert not (out / "student" / "02_broken.ipynb").exists() and not (out / "student" / "03_garbled.ipynb").exists()
    page = (out / "instructor" / "README.md").read_text()
    assert "| 01_fine | " in page and "| 02_broken | failed (RuntimeError: broken here) |" in page
    assert "| 03_garbled | unreadable: " in page
