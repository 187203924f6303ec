"""`pip install tdexplain` as a user runs it: a wheel built from this checkout, installed without
extras into a fresh virtual environment, explains a shipped sample from a folder outside the
repository, and leaves the notebook stack out.

Minutes (TensorFlow comes from the package index or pip's cache), so `make test-install` runs
it, not `make test`. Skipped when the package index cannot be reached, unless
REQUIRE_INSTALL=1 (as .ci/run sets): then that fails.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
INSTALL = "pip install 'tdexplain[notebooks]'"
# Installing TensorFlow and its dependencies from the index can take many minutes.
pytestmark = pytest.mark.timeout(3600)


def _environment() -> dict:
    """This process's environment without what would point at the checkout or its .venv (and
    the Keras backend: a lean install has TensorFlow only)."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP", "KERAS_BACKEND"}
    return {key: value for key, value in os.environ.items() if key not in drop}


def _run(command, cwd, timeout=1800, check=True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(part) for part in command], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                    f"{done.stderr[-3000:]}")
    return done


def _index_unreachable(python) -> str | None:
    """Why pip cannot see TensorFlow on its package index, or None when it can."""
    done = subprocess.run([python, "-m", "pip", "index", "versions", "tensorflow", "--retries", "0",
                           "--timeout", "20"], env=_environment(), capture_output=True, text=True,
                          timeout=300)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or ["no answer"])[-1]


def _checkout_copy(target: Path) -> Path:
    """The files git has (tracked, or new and not ignored), as a fresh clone would: the build
    leaves nothing in the checkout, and ships nothing git would not."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source, copy = REPO / name, target / name
        if not source.exists() and not source.is_symlink():  # deleted, not yet committed
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            copy.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, copy)
    return target


@pytest.fixture(scope="module")
def lean(tmp_path_factory):
    """A wheel of the checkout, and a fresh virtual environment with only it installed (removed
    after the tests)."""
    unreachable = _index_unreachable(sys.executable)
    if unreachable:
        reason = f"the package index cannot be reached ({unreachable})"
        if os.environ.get("REQUIRE_INSTALL") == "1":
            pytest.fail(f"{reason}, and REQUIRE_INSTALL=1")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("install")
    source = _checkout_copy(root / "checkout")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", root / "dist", source], cwd=root)
    wheel = next((root / "dist").glob("tdexplain-*.whl"))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root)
    python = venv / "bin" / "python"
    start = time.perf_counter()
    _run([python, "-m", "pip", "install", "--quiet", wheel], cwd=root)
    installed = time.perf_counter() - start
    outside = root / "elsewhere"  # no checkout around it: only the installed package is found
    outside.mkdir()
    yield dict(root=root, wheel=wheel, venv=venv, python=python, tdexplain=venv / "bin" / "tdexplain",
               outside=outside, install_seconds=installed)
    shutil.rmtree(root, ignore_errors=True)  # 2.6 GB, mostly TensorFlow


def _python(lean, code: str, check=True) -> subprocess.CompletedProcess:
    return _run([lean["python"], "-c", code], cwd=lean["outside"], timeout=600, check=check)


def test_the_wheel_is_small_and_carries_the_samples(lean):
    import zipfile

    names = zipfile.ZipFile(lean["wheel"]).namelist()
    assert lean["wheel"].stat().st_size < 8 * 2**20
    for name in ("py.typed", "data_samples/demo_model.keras", "data_samples/random_labels_model.keras",
                 "data_samples/demo_model.metrics.json", "data_samples/paper_tables.csv",
                 "data_samples/clips/fight_01.mp4", "data_samples/clips/fight_01_mask.npz"):
        assert f"tdexplain/{name}" in names, name


def test_the_installed_package_finds_its_samples_and_not_the_checkout(lean):
    done = _python(lean, """
import json, os
from importlib import resources
import tdexplain
from tdexplain.workbook import data, models
clips = resources.files("tdexplain") / "data_samples" / "clips"
print(json.dumps({"package": tdexplain.__file__, "fight": data.sample_path("clips/fight_01.mp4"),
                  "demo": models.DEMO_MODEL, "clips": sorted(p.name for p in clips.iterdir()),
                  "demo_exists": os.path.isfile(models.DEMO_MODEL)}))
""")
    found = json.loads(done.stdout.splitlines()[-1])
    site = str(lean["venv"])
    assert found["package"].startswith(site) and found["fight"].startswith(site), found
    assert found["demo"].startswith(site) and found["demo_exists"]
    assert len([name for name in found["clips"] if name.endswith(".mp4")]) == 6
    assert len([name for name in found["clips"] if name.endswith("_mask.npz")]) == 6


def test_the_command_explains_a_shipped_sample_from_outside_the_repository(lean):
    sample = _python(lean, "from tdexplain import data; print(data.sample_path('clips/fight_01.mp4'))").stdout.strip()
    out = lean["outside"] / "fight_01_explained"
    done = _run([lean["tdexplain"], "explain", sample, "--out", out, "--method", "saliency",
                 "--window", "0", "--quiet"], cwd=lean["outside"], timeout=600)
    assert "1 window explained" in done.stdout and "Traceback" not in done.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is True and summary["model"]["note"] is None
    assert [window["predicted"] for window in summary["windows"]] == ["fight"]
    assert (out / "overlay.mp4").stat().st_size > 0 and (out / "timeline.png").stat().st_size > 0


def test_the_notebook_stack_is_not_installed(lean):
    for module in ("ipywidgets", "papermill", "nbconvert", "nbformat", "jupyterlab", "ipykernel", "yaml"):
        done = _python(lean, f"import {module}", check=False)
        assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr, module
    assert _run([lean["python"], "-m", "pip", "check"], cwd=lean["outside"]).returncode == 0


def test_what_needs_the_extra_says_which_to_install(lean):
    for module in ("tdexplain.interfaces.widgets", "tdexplain.interfaces.app"):
        done = _python(lean, f"import {module}", check=False)
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode != 0 and last.startswith(f"tdexplain.extras.MissingExtra: {module} needs ipywidgets")
        assert INSTALL in last
    done = _run([lean["tdexplain"], "report", "notebooks", "--out", "reports"], cwd=lean["outside"],
                timeout=600, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("tdexplain report: error: tdexplain.workbook.report")
    assert INSTALL in done.stderr


def test_the_lean_environment_is_smaller_than_the_workbook_s(lean):
    """Fewer distributions than the .venv of `make` (the library with dev and notebooks)."""
    def count(python):
        listed = _run([python, "-m", "pip", "list", "--format", "json"], cwd=lean["outside"]).stdout
        return len(json.loads(listed))

    lean_count, full_count = count(lean["python"]), count(sys.executable)
    print(f"\nwheel {lean['wheel'].stat().st_size / 2**20:.1f} MiB; lean install {lean['install_seconds']:.0f} s; "
          f"{lean_count} distributions in the lean environment, {full_count} in {sys.prefix}")
    assert lean_count < full_count
