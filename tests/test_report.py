import argparse
import base64
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from tdexplain.workbook import report


def _notebook(path, *sources, parameters=None, seconds=None):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if seconds is not None:  # as scripts/refresh_notebooks.py records it
        nb.metadata["tdexplain"] = {"seconds": seconds}
    if parameters:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [new_code_cell(s) for s in sources]
    nbformat.write(nb, path)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_failing_notebook_keeps_the_others_and_says_why(tmp_path, capsys, engine, request):
    notebooks, out = tmp_path / "nb", tmp_path / "reports"
    notebooks.mkdir()
    _notebook(notebooks / "01_ok.ipynb", "print(6 * 7)",
              "%matplotlib inline\nimport matplotlib.pyplot as plt\nplt.plot([1, 2], [3, 1]);", seconds=3)
    _notebook(notebooks / "02_broken.ipynb", "x = 1", "raise RuntimeError('the model file is missing')",
              "print('never')", seconds=1)
    _notebook(notebooks / "03_params.ipynb", "print('value', value)", parameters="value = 1", seconds=9)
    # handed to the two workers longest first (by the time each took when last refreshed)
    assert [p.name[:2] for p in report.longest_first(notebooks.glob("*.ipynb"))] == ["03", "01", "02"]
    params = tmp_path / "p.yaml"
    params.write_text("value: 5\n")
    # Two at a time, as `make report` renders them, or as Ray tasks: each result lands in its place.
    if engine == "ray":
        request.getfixturevalue("local_ray").start()
    code = report.run(argparse.Namespace(notebooks=str(notebooks), out=str(out), parameters=str(params), jobs=2,
                                         engine=engine, address=None, for_each=None))
    assert code == 1
    printed = capsys.readouterr()
    assert "02_broken.ipynb" in printed.err and "1 of 3 notebooks failed" in printed.err
    assert "RuntimeError: the model file is missing" in printed.out
    for name in ("01_ok", "02_broken", "03_params"):
        assert (out / f"{name}.ipynb").exists() and (out / f"{name}.html").exists()
    index = (out / "index.html").read_text()
    assert index.count("<tr><td>") == 3 and "failed</span>: RuntimeError: the model file is missing" in index
    # what the reports ran on: the backend, the versions and the parameters given
    assert "<th>Keras backend</th><td>tensorflow</td>" in index and "keras 3." in index
    assert "<th>parameters</th><td>value = 5</td>" in index and ("3 notebooks,\n2 at a time" if engine == "local" else "3 notebooks,\neach as a Ray task") in index
    ok = nbformat.read(out / "01_ok.ipynb", as_version=4)
    assert [o["text"] for c in ok.cells for o in c.get("outputs", []) if "text" in o] == ["42\n"]
    # the index shows each notebook's first figure, the very PNG of its output
    assert '<img src="01_ok.png"' in index and index.count("no figure") == 2
    png = next(o["data"]["image/png"] for c in ok.cells for o in c.get("outputs", []) if "data" in o)
    assert (out / "01_ok.png").read_bytes() == base64.b64decode(png)
    # The failed notebook's report keeps the cells run before the error, and the error.
    broken = (out / "02_broken.html").read_text()
    assert "the model file is missing" in broken
    # Parameters from the YAML file reach the notebook.
    assert "value 5" in (out / "03_params.html").read_text()


def test_reports_once_per_configuration_each_with_its_index(tmp_path, capsys):
    """--for-each value=5,7: every notebook once per value, in out/5/ and out/7/, all handed to
    the workers at once (as to Ray tasks: the same list, which the test above runs on Ray); each
    folder's index names its value."""
    notebooks, out = tmp_path / "nb", tmp_path / "reports"
    notebooks.mkdir()
    _notebook(notebooks / "01_params.ipynb", "print('value', value)", parameters="value = 1")
    _notebook(notebooks / "02_double.ipynb", "print('twice', 2 * value)", parameters="value = 1")
    arguments = argparse.ArgumentParser()
    report.add_arguments(arguments)
    options = arguments.parse_args([str(notebooks), "--out", str(out), "--for-each", "value=5,7", "--jobs", "2"])
    assert report.run(options) == 0
    printed = capsys.readouterr().out
    for value in (5, 7):
        assert f"value {value}" in (out / str(value) / "01_params.html").read_text()
        assert f"twice {2 * value}" in (out / str(value) / "02_double.html").read_text()
        assert f"<th>parameters</th><td>value = {value}</td>" in (out / str(value) / "index.html").read_text()
        assert f"index: {out / str(value) / 'index.html'}" in printed
    with pytest.raises(ValueError, match=r"for_each needs values that name distinct folders; got "
                                         r"model=\['a/m.keras', 'b/m.keras'\]"):
        report.render_all(notebooks, out, for_each=("model", ["a/m.keras", "b/m.keras"]))


def test_jobs_must_be_a_whole_number(tmp_path, capsys):
    _notebook(tmp_path / "01.ipynb", "x = 1")
    with pytest.raises(ValueError, match="jobs must be a whole number of at least 1, got 0"):
        report.render_all(tmp_path, tmp_path / "out", jobs=0)
    with pytest.raises(SystemExit):
        report.main([str(tmp_path), "--jobs", "0"])
    assert "--jobs: a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_missing_parameters_file_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="parameters file not found"):
        report.load_parameters(tmp_path / "nope.yaml")
    with pytest.raises(FileNotFoundError, match="no notebook"):
        report.render_all(tmp_path, tmp_path / "out")


def test_papermill_injects_parameters_into_a_workbook_notebook(tmp_path):
    """The data tour run by papermill with smaller clips: the output notebook records the
    injected values (its tagged cell and its metadata), and its outputs follow them."""
    import papermill

    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "00_data_tour.ipynb"
    injected = {"frames": 4, "size": 32, "n_clips": 6, "seed": 1}
    out = tmp_path / "00_data_tour.ipynb"
    papermill.execute_notebook(str(notebook), str(out), parameters=injected, cwd=str(notebook.parent),
                               kernel_name="python3", progress_bar=False)
    executed = nbformat.read(out, as_version=4)
    assert executed.metadata.papermill.parameters == injected
    cells = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and "frames = 4" in cells[0].source and "n_clips = 6" in cells[0].source
    texts = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "clips (6, 4, 32, 32, 3) uint8" in texts


def test_the_backends_start_up_lines_are_dropped_at_load_and_nothing_else(capfd):
    """What C++ code writes to file descriptor 2 while the backend loads: absl's notices and the
    cuInit error of a machine without a GPU go; any other line, errors included, is written back."""
    import os

    import tdexplain

    with tdexplain._backend_logs_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
                 b"E0000 00:00:1795442746.990361   24422 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
                    b"a real error from a library\n"
                    b"E0000 00:00:1.5   7 cuda_dnn.cc:10] Could not load cuDNN\n"
                    b"W0000 00:00:1.5   7 cpu_feature_guard.cc:10] AVX512\n")
    assert capfd.readouterr().err == ("a real error from a library\n"
                                      "E0000 00:00:1.5   7 cuda_dnn.cc:10] Could not load cuDNN\n")


def test_a_notebook_importing_tdexplain_first_shows_no_backend_log_line(tmp_path, capfd):
    """The executed report holds no stderr output at all (nothing to filter afterwards), and the
    console shows neither a backend log line nor the kernel's transport warning."""
    notebooks, out = tmp_path / "nb", tmp_path / "reports"
    notebooks.mkdir()
    _notebook(notebooks / "quiet.ipynb", "x = 1", "import tdexplain\nimport keras\nimport tensorflow as tf",
              "print(float(keras.ops.sum(keras.ops.ones(3))), len(tf.config.list_physical_devices()) >= 1)")
    [rendered] = report.render_all(notebooks, out)
    assert rendered.error is None
    outputs = [o for c in nbformat.read(rendered.ipynb, as_version=4).cells for o in c.outputs]
    assert [(o.name, o.text) for o in outputs] == [("stdout", "3.0 True\n")]
    console = capfd.readouterr().err
    assert "absl" not in console and "cuInit" not in console and "without encryption" not in console


def test_a_widget_with_a_picture_is_reported_as_the_picture(tmp_path):
    """A report is read offline, with no kernel behind its widgets: the picture of a widget's
    first view (`Explorer.show`) stands for it, even with the widget state saved; other outputs
    are untouched."""
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n-the-first-view-").decode()
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb = new_notebook()
    cell = new_code_cell("explorer.show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        "application/vnd.jupyter.widget-view+json": view, "image/png": png, "text/plain": "VBox(...)"}),
        nbformat.v4.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": view,
                                                     "text/plain": "IntSlider(...)"})]
    nb.cells.append(cell)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
    path = tmp_path / "explorer.ipynb"
    nbformat.write(nb, path)
    page = report._to_html(path).read_text()
    assert f'src="data:image/png;base64,{png}"' in page
    assert "VBox(...)" not in page and "IntSlider(...)" in page  # a widget with no picture: as nbconvert shows it


def test_a_notebook_without_a_readable_run_time_sorts_as_zero(tmp_path):
    _notebook(tmp_path / "timed.ipynb", "x = 1", seconds=12)
    _notebook(tmp_path / "untimed.ipynb", "x = 1")
    (tmp_path / "broken.ipynb").write_text("{ not json")
    assert [report.last_run_seconds(tmp_path / f"{n}.ipynb") for n in ("timed", "untimed", "broken", "gone")] == \
        [12.0, 0.0, 0.0, 0.0]
