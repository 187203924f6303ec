"""The workbook's shape as a course: objectives first, exercises last, solutions hidden."""

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0[0-7]_*.ipynb"))


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
    answers = [c for c in solutions if c.cell_type == "markdown"]
    assert 2 <= len(exercises) <= 4 and len(answers) == len(exercises) == len(solutions) - len(answers)
    for solution in solutions:  # an answer, then its code (tests/test_editions.py)
        assert solution.metadata["jupyter"]["source_hidden"] is True
    headings = [c.source.splitlines()[0] for c in cells[start:] if c.cell_type == "markdown"]
    assert headings[1:] == [f"### {kind} {n}" for n in range(1, len(exercises) + 1)
                            for kind in ("Exercise", "Solution")]


EXPLAINING = [p for p in NOTEBOOKS if p.stem[:2] in ("02", "03", "04", "05", "07")]


@pytest.mark.parametrize("path", EXPLAINING, ids=lambda p: p.stem)
def test_notebooks_that_explain_a_model_take_it_and_its_sizes_as_parameters(path):
    """The paper's sizes are parameters: the model comes from `model_path` and the clips take
    its frame count and size; no cell loads the demo model or a 64-pixel clip by itself."""
    cells = nbformat.read(path, as_version=4).cells
    parameters = next(c.source for c in cells if "parameters" in c.metadata.get("tags", []))
    assert 'model_path = ""' in parameters
    code = "\n".join(c.source for c in cells if c.cell_type == "code")
    assert "load_model(model_path or models.DEMO_MODEL)" in code
    assert "frames, size = shapes.input_spec(model)" in code
    for fixed in ("load_model(models.DEMO_MODEL)", "size=64", "frames=8", "range(8)", "64 * 64", "(64, 64)"):
        assert fixed not in code, fixed


def test_a_notebook_follows_the_model_it_is_given(tmp_path):
    """02 run on a model of another size (untrained: only shapes matter here) runs to the end
    and computes at that size."""
    import papermill

    from tdexplain.workbook import models

    paths = {}
    for name, temporal in (("model_path", "gru"), ("frame_average_model_path", "average")):
        paths[name] = str(tmp_path / f"{name}.keras")
        models.save_model(models.build_model(frames=6, size=48, width=0.0625, gru_units=8, dense_blocks=1,
                                             temporal=temporal), paths[name])
    notebook = next(p for p in NOTEBOOKS if p.stem.startswith("02"))
    out = tmp_path / notebook.name
    papermill.execute_notebook(str(notebook), str(out), parameters=paths | {"n_clips": 3, "event_clips": 2},
                               cwd=str(notebook.parent), kernel_name="python3", progress_bar=False)
    printed = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "one gradient call on the plain model: (1, 6, 48, 48, 3)" in printed
    # The last exercise's solution: one share per frame of the given model's 6.
    shares = re.search(r"share of the gradient mass per frame: \[([^\]]*)\]", printed)
    assert shares and len(shares.group(1).split()) == 6, printed
    # The section on which frames matter blacks out the frames of the given model and its baseline.
    assert "2 fights and 2 shootings; score drop when one frame is blacked out" in printed
    assert re.search(r"GRU\s+fight", printed) and re.search(r"frame average\s+fight", printed), printed
