"""The workbook's shape as a course: objectives first, exercises last, solutions hidden."""

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[1-7]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_opens_with_objectives_and_ends_with_exercises_and_hidden_solutions(path):
    cells = nbformat.read(path, as_version=4).cells
    objectives = cells[1].source
    assert objectives.startswith("## Learning objectives") and "*Time:" in objectives
    assert 3 <= objectives.count("\n- ") <= 5
    parameters = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    assert cells[parameters - 1].cell_type == "markdown" and "`" in cells[parameters - 1].source
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises"))
    exercises = [c for c in cells[start:] if c.source.startswith("### Exercise")]
    solutions = [c for c in cells[start:] if "solution" in c.metadata.get("tags", [])]
    assert 2 <= len(exercises) <= 4 and len(solutions) == len(exercises)
    for solution in solutions:
        assert solution.cell_type == "code" and solution.metadata["jupyter"]["source_hidden"] is True
    headings = [c.source.splitlines()[0] for c in cells[start:] if c.cell_type == "markdown"]
    assert headings[1:] == [f"### {kind} {n}" for n in range(1, len(exercises) + 1)
                            for kind in ("Exercise", "Solution")]
