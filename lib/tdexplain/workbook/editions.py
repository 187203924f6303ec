"""The course's two editions of a rendered notebook, and its solutions folded in the HTML report.

An exercise's solution is one or more cells tagged ``solution``: a markdown cell, its heading
then one sentence that answers the question (``**Answer.** ...``), then the code that shows
it. The answers to a summary's check-your-understanding questions are one markdown cell tagged
the same way (``#### Answers``). From the executed notebook `make report` writes

- the student edition (``student/NN.ipynb``, and ``student/NN.html`` to hand out): every
  output and figure, the exercises, and no solution cell;
- the instructor edition (``instructor/NN.ipynb``): the same notebook with its solutions in
  place and shown (the workbook's notebooks hide them in JupyterLab);

and the HTML report (the instructor's page) folds each solution behind a click (``<details>``). `write_instructor_page` adds the instructor's page of the run: each
notebook's run time, measured, and the answer key, read from the solutions.
"""

from __future__ import annotations

import copy
import html
from pathlib import Path

__all__ = ["SOLUTION", "WHERE_SOLUTIONS_ARE", "FOR_INSTRUCTORS", "FOR_STUDENTS", "is_solution",
           "student_edition", "instructor_edition", "folded_solutions", "write_editions", "answer_key",
           "write_instructor_page"]

SOLUTION = "solution"  # the tag of a solution's cells


def is_solution(cell) -> bool:
    return SOLUTION in cell.get("metadata", {}).get("tags", [])


# Where the notebooks say their solutions are, and what each edition says instead.
WHERE_SOLUTIONS_ARE = ("Each has a solution: hidden in these notebooks (click the cell's margin, or the '...', "
                       "to show it), folded behind a click in the HTML reports, shown in the instructor "
                       "edition, and left out of the student edition that `make report` writes "
                       "(`reports/student/`).")
FOR_INSTRUCTORS = {WHERE_SOLUTIONS_ARE: "Each has a solution, shown under it in this edition."}
FOR_STUDENTS = {
    WHERE_SOLUTIONS_ARE: "Your instructor has the solutions.",
    "; the [instructor page](../docs/instructor.md) has the plan of a session, prerequisites and "
    "pitfalls, and `make report` writes this run's times and the answer key beside the instructor "
    "edition (`reports/instructor/README.md`).": ".",
}


def student_edition(notebook):
    """A copy of the notebook without its solution cells, and without the sentences that tell
    the instructor where the solutions and the answer key are."""
    edition = copy.deepcopy(notebook)
    edition.cells = [cell for cell in edition.cells if not is_solution(cell)]
    return _reworded(edition, FOR_STUDENTS)


def _reworded(edition, replacements: dict):
    for cell in edition.cells:
        if cell.cell_type == "markdown":
            for said, instead in replacements.items():
                cell.source = cell.source.replace(said, instead)
    return edition


def _output_html(output) -> str:
    """One output of a code cell as HTML: its picture, its HTML table, its error or its text
    (without blank lines, which would end the HTML block inside the markdown cell)."""
    data = output.get("data", {})
    if "image/png" in data:
        return f'<img src="data:image/png;base64,{data["image/png"]}"/>'
    if "text/html" in data:
        return "\n".join(line for line in "".join(data["text/html"]).splitlines() if line.strip())
    if output.get("output_type") == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
    text = "".join(output.get("text") or data.get("text/plain") or "")
    return f"<pre>{html.escape(text)}</pre>" if text else ""


def _folded(cells) -> str:
    """One solution's cells as a <details> block: the answer's markdown, the code, its outputs."""
    parts = []
    for cell in cells:
        if cell.cell_type == "markdown":
            parts.append(f"\n{cell.source}\n")
        else:
            parts.append(f'<pre><code class="language-python">{html.escape(cell.source)}</code></pre>')
            parts.extend(_output_html(output) for output in cell.get("outputs", []))
    heading = cells[0].source.partition("\n")[0].lstrip("# ") if cells[0].cell_type == "markdown" else ""
    return (f"<details><summary><b>{html.escape(heading or 'Solution')}</b> (click to open)</summary>\n"
            + "\n".join(parts) + "\n</details>")


def folded_solutions(notebook):
    """A copy of the notebook where each run of solution cells is one markdown cell that shows
    them behind a click (for the HTML report; the .ipynb keeps its cells)."""
    import nbformat

    edition = copy.deepcopy(notebook)
    cells, run = [], []
    for cell in edition.cells + [None]:
        if cell is not None and is_solution(cell):
            run.append(cell)
            continue
        if run:
            cells.append(nbformat.v4.new_markdown_cell(_folded(run)))
            run = []
        if cell is not None:
            cells.append(cell)
    edition.cells = cells
    return edition


def instructor_edition(notebook):
    """A copy of the notebook with its solution cells shown (not hidden in JupyterLab), and saying so."""
    edition = copy.deepcopy(notebook)
    for cell in edition.cells:
        if is_solution(cell):
            cell.metadata.get("jupyter", {}).pop("source_hidden", None)
    return _reworded(edition, FOR_INSTRUCTORS)


def _one_folder_deeper(notebook):
    """The editions sit one folder deeper than the reports (reports/student/): relative links to
    the repository's files (../docs/...) get one more ../."""
    return _reworded(notebook, {"](../": "](../../"})


def write_editions(executed: Path, out_dir: Path) -> dict:
    """Write the student and instructor editions of an executed notebook under
    out_dir/student/ and out_dir/instructor/, and the student's HTML page beside its notebook
    (a page to hand out with no solution in it): {edition: path}."""
    import nbformat

    notebook = nbformat.read(executed, as_version=4)
    written = {}
    for name, edition in (("student", student_edition(notebook)), ("instructor", instructor_edition(notebook))):
        target = Path(out_dir) / name / Path(executed).name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(_one_folder_deeper(edition), target)
        written[name] = target
    return written


def _exercises(notebook) -> int:
    return sum(cell.cell_type == "markdown" and cell.source.startswith("### Exercise") for cell in notebook.cells)


def answer_key(notebook) -> list[tuple[str, str]]:
    """(exercise, answer) per exercise: the exercise's heading and question, and the sentence
    that opens its solution."""
    key, question = [], None
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        if cell.source.startswith("### Exercise"):
            question = " ".join(cell.source.split("\n\n", 1)[-1].split())
        elif is_solution(cell) and "**Answer.** " in cell.source and question is not None:
            key.append((question, " ".join(cell.source.split("**Answer.** ", 1)[1].split())))
            question = None
    return key


def write_instructor_page(notebooks: list, runs: dict, out_dir: Path, parameters: dict | None = None) -> Path:
    """out_dir/instructor/README.md: how each notebook ran ({notebook name: (seconds, error or
    None)}) and the answer key of its exercises. The answers are the notebooks' own sentences,
    written for their default parameters: with other `parameters` the page says so."""
    import nbformat

    lines = ["# For instructors: this run", "",
             "Written by `make report` from the run it comes with; the plan of a session, the "
             "prerequisites and the pitfalls are in `docs/instructor.md`."]
    if parameters:
        lines.append("This run had parameters of its own: the answers below quote the notebooks' "
                     "default run, check them against the instructor edition's outputs.")
    lines += ["", "| notebook | ran in (this machine) | exercises |", "|---|---|---|"]
    keys = {}
    for path in sorted(Path(p) for p in notebooks):
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception as error:  # noqa: BLE001 - a notebook that cannot be read is a row, not a crash
            lines.append(f"| {path.stem} | unreadable: {type(error).__name__} | |")
            continue
        keys[path.stem] = answer_key(notebook)
        seconds, error = runs.get(path.name, (None, "not run"))
        ran = f"{seconds:.0f} s" if error is None else f"failed ({error})" if seconds is not None else error
        lines.append(f"| {path.stem} | {ran} | {_exercises(notebook)} |")
    lines += ["", "## Answer key", ""]
    for name, key in keys.items():
        if key:
            lines += [f"### {name}", ""]
            for number, (question, answer) in enumerate(key, 1):
                lines += [f"{number}. {question}", "", f"   **Answer.** {answer}", ""]
    target = Path(out_dir) / "instructor" / "README.md"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines), encoding="utf-8")
    return target
