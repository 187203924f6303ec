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


# A number a markdown cell quotes (a decimal or a percentage) must be printed by a stored output
# of the same notebook, the outputs nbval compares with a fresh run (`# NBVAL_CHECK_OUTPUT`), or
# be one of its parameters: a text whose numbers no longer match its notebook fails here. A
# number printed with more digits matches when it rounds to the quoted one (0.874: 0.87, 87%).
# The numbers that are not results of the notebook's run, each with where it comes from:
NOT_RESULTS = {
    "01": {"50%": "the paper's Section 3 (GRU dropout)", "0.5": "the paper's Section 3 (Dropout(0.5))"},
    "06": {"95%": "the level of the bootstrap intervals, a parameter",
           "88.4": "a quote of the paper's text, Section 4"},
    "07": {"127.5": "the shift of the input-invariance check, a constant of the method"},
}
QUOTED = re.compile(r"(?<![\w.])\d+\.\d+%?|(?<![\w.])\d+%")
RUN_TIME = re.compile(r"\*Time: about ([\d.]+) (s|minutes?) to run")
PRINTED = re.compile(r"(?<![\w.])\d+(?:\.\d+)?%?")


def _printed_values(cells) -> list[float]:
    """The numbers of the stored outputs, and of the parameters cell (the values a text may name)."""
    texts = [output.get("text", "") + output.get("data", {}).get("text/plain", "")
             for cell in cells if cell.cell_type == "code" for output in cell.get("outputs", [])]
    texts += [cell.source for cell in cells if "parameters" in cell.metadata.get("tags", [])]
    return [float(s.rstrip("%")) / (100 if s.endswith("%") else 1) for s in PRINTED.findall("\n".join(texts))]


def _is_printed(quoted: str, values: list[float]) -> bool:
    number = quoted.rstrip("%")
    decimals = len(number.partition(".")[2])
    scale = 100 if quoted.endswith("%") else 1
    return any(round(value * scale, decimals) == float(number) for value in values)


def test_a_quoted_number_matches_a_printed_one_only_as_its_rounding():
    values = _printed_values([nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output(
        "stream", text="F1 0.874, chance 12.5%, 3 of 8")])])
    assert all(_is_printed(quoted, values) for quoted in ("0.87", "87%", "0.874", "12.5%", "0.125", "0.1"))
    assert not any(_is_printed(quoted, values) for quoted in ("0.88", "0.86", "88%", "13.5%", "0.375"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_number_the_text_quotes_is_printed_by_the_notebook(path):
    cells = nbformat.read(path, as_version=4).cells
    values = _printed_values(cells)
    exempt = NOT_RESULTS.get(path.stem[:2], {})
    markdown = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    markdown = RUN_TIME.sub("", markdown)  # checked against the last run below
    missing = [(quoted, markdown[max(0, m.start() - 60):m.end() + 20].replace("\n", " "))
               for m in QUOTED.finditer(markdown) if (quoted := m.group(0)) not in exempt
               and not _is_printed(quoted, values)]
    assert not missing, "quoted in the text, printed by no stored output:\n" + "\n".join(map(str, missing))
    assert all(number in markdown for number in exempt), "an exemption no longer quoted: remove it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_stated_run_time_is_the_last_refresh_s(path):
    """The objectives' run time against the seconds `scripts/refresh_notebooks.py` measured."""
    notebook = nbformat.read(path, as_version=4)
    amount, unit = RUN_TIME.search(notebook.cells[1].source).groups()
    stated = float(amount) * (1 if unit == "s" else 60)
    measured = notebook.metadata["tdexplain"]["seconds"]
    assert abs(stated - measured) <= max(5, 0.25 * measured), (stated, measured)
