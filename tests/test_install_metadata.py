"""A plain `pip install tdexplain` is lean, and carries its samples: the quick checks (seconds).

What a real install does (a wheel in a fresh virtual environment, explaining a sample from
outside the repository) is `make test-install` (tests_install/, minutes).
"""

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

from tdexplain.workbook import data, models

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
# The workbook's stack: a plain install leaves all of it to the `notebooks` extra.
NOTEBOOK_STACK = {"jupyterlab", "notebook", "ipykernel", "ipywidgets", "papermill", "nbconvert",
                  "nbformat", "nbval", "pyyaml", "voila", "playwright"}
# Modules that only the extras bring (jupyter: every jupyter_* and jupyterlab); none may load
# with the library and its command line. (IPython may: Keras imports it when it is there.)
EXTRA_MODULES = ("ipywidgets", "papermill", "nbformat", "nbconvert", "nbval", "ipykernel", "yaml",
                 "jupyter", "voila", "playwright")
NOT_INSTALLED = ("ipywidgets", "papermill", "nbformat", "nbconvert", "nbval", "ipykernel", "yaml",
                 "jupyter_client", "jupyter_core", "jupyterlab", "voila", "playwright")


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9._-]+", requirement).group().lower().replace("_", "-")


def test_core_requirements_leave_the_notebook_stack_to_the_extra():
    core = {_name(r) for r in PROJECT["dependencies"]}
    assert core.isdisjoint(NOTEBOOK_STACK), core & NOTEBOOK_STACK
    # What the library's modules import at their top, and pandas for the tables it returns.
    assert {"tensorflow", "keras", "numpy", "opencv-python-headless", "matplotlib", "imageio-ffmpeg",
            "tqdm", "pandas"} <= core
    extras = PROJECT["optional-dependencies"]
    assert {"jupyterlab", "ipykernel", "ipywidgets", "papermill", "nbconvert", "nbval", "pyyaml"} <= {
        _name(r) for r in extras["notebooks"]}
    for needs_notebooks in ("app", "browser"):  # both serve notebooks
        assert "tdexplain[notebooks]" in extras[needs_notebooks]
    assert {_name(r) for r in extras["cluster"]} == {"ray"}  # Ray stays out of the core install
    # The bootstrap of `make test` and `make report` installs the workbook too, Voila for the app's
    # server tests, and Ray for the cluster tests.
    stamp_rule = re.search(r"^\$\(STAMP\):.*?(?=^\S)", (REPO / "Makefile").read_text(), re.M | re.S).group()
    assert "-e '.[dev,notebooks,app,cluster]'" in stamp_rule


def test_the_samples_and_the_demo_models_ship_in_the_package():
    """Every file of data_samples/ is package data (found with importlib.resources, declared in
    pyproject.toml), and the repository's data_samples/ is a link to it."""
    package = resources.files("tdexplain")
    shipped = Path(os.fspath(package / "data_samples"))
    assert (REPO / "data_samples").is_symlink() and (REPO / "data_samples").resolve() == shipped.resolve()
    for name in ("clips/fight_01.mp4", "clips/fight_01_mask.npz", "demo_model.keras",
                 "random_labels_model.keras", "demo_model.metrics.json", "paper_tables.csv",
                 "frame_average_model.keras", "frame_average_model.metrics.json"):
        assert Path(data.sample_path(name)).is_file(), name
        assert Path(data.sample_path(name)).resolve().is_relative_to(shipped.resolve())
    assert Path(models.DEMO_MODEL) == shipped / "demo_model.keras"
    assert Path(models.RANDOM_LABELS_MODEL) == shipped / "random_labels_model.keras"
    assert Path(models.FRAME_AVERAGE_MODEL) == shipped / "frame_average_model.keras"
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tdexplain"]
    assert (Path(os.fspath(package)) / "py.typed").is_file() and "py.typed" in patterns
    files = [path.relative_to(shipped.parent).as_posix() for path in shipped.rglob("*") if path.is_file()]
    assert len(files) >= 18
    undeclared = [f for f in files if not any(fnmatch.fnmatch(f, p) for p in patterns)]
    assert not undeclared, f"add to [tool.setuptools.package-data]: {undeclared}"


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=os.environ | env)


def test_the_library_and_its_command_line_import_nothing_from_the_extras(tmp_path):
    """`import tdexplain`, its core modules and `tdexplain explain` on a sample run without the
    notebook stack: after them, no module of an extra is loaded."""
    done = _run(f"""
import json, sys
import tdexplain
from tdexplain.engine import explainer
from tdexplain.interfaces import cli, video, viz
from tdexplain.metrics import evaluate  # every metric
from tdexplain.workbook import data
code = cli.main(["explain", data.sample_path("clips/fight_01.mp4"), "--out", {str(tmp_path / "out")!r},
                 "--quiet", "--method", "saliency", "--window", "0"])
loaded = sorted(m for m in sys.modules if m.split(".")[0].startswith({EXTRA_MODULES!r}))
print(json.dumps({{"code": code, "loaded": loaded}}))
""")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"code": 0, "loaded": []}
    assert (tmp_path / "out" / "summary.json").is_file()


def test_without_the_notebooks_extra_each_feature_names_it(tmp_path):
    """With the notebook stack made unimportable, the explorers, the app and `tdexplain report`
    stop with one message that names the extra, not a ModuleNotFoundError from inside; the
    library and `tdexplain explain --help` still work."""
    done = _run(f"""
import json, sys
for name in {NOT_INSTALLED!r}:
    sys.modules[name] = None  # as if not installed
from tdexplain.engine import explainer
from tdexplain.interfaces import cli
said = {{}}
for module in ("tdexplain.interfaces.widgets", "tdexplain.interfaces.app"):
    try:
        __import__(module)
    except ImportError as error:
        said[module] = [type(error).__name__, str(error)]
said["report"] = cli.main(["report", "notebooks", "--out", {str(tmp_path / "reports")!r}])
print(json.dumps(said))
""")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    install = "pip install 'tdexplain[notebooks]'"
    for module in ("tdexplain.interfaces.widgets", "tdexplain.interfaces.app"):
        kind, message = said[module]
        assert kind == "MissingExtra" and message.startswith(f"{module} needs ipywidgets") and install in message
    assert said["report"] == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("tdexplain report: error: tdexplain.workbook.report") and install in last
    assert "Traceback" not in done.stderr and not (tmp_path / "reports").exists()
