"""Render every notebook into executed ``.ipynb`` and ``.html`` reports, with an index, and the
course's student and instructor editions (`editions`: ``student/`` and ``instructor/``).

A notebook that fails still gets its report (papermill keeps the cells run so far and the
error), the others are still rendered, and the index and the exit code say which failed
and why.

Rendering needs the `notebooks` extra (papermill, nbconvert, pyyaml). This module imports
without it, since the `tdexplain` command builds its `report` subcommand from
`add_arguments`; each function that renders says which extra to install when it is missing.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import html
import json
import logging
import multiprocessing
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..extras import ENGINES, check_engine, connect_ray, require
from .editions import folded_solutions, write_editions, write_instructor_page

__all__ = ["Rendered", "WIDGET_VIEW", "static_pictures", "render_notebook", "first_figure", "environment",
           "write_index", "last_run_seconds", "longest_first", "render_all", "load_parameters",
           "add_arguments", "run", "main"]

log = logging.getLogger(__name__)


def _require_notebooks_extra() -> None:
    require("tdexplain.workbook.report (`tdexplain report`)",
            "yaml", "papermill", "nbconvert", "nbformat", "jupyter_client", "ipykernel")


@dataclass
class Rendered:
    notebook: str
    ipynb: Path
    html: Path | None
    seconds: float
    error: str | None = None


def _first_line_of_error(error: Exception) -> str:
    """papermill's errors carry the whole traceback; keep the exception line."""
    name = getattr(error, "ename", type(error).__name__)
    value = getattr(error, "evalue", str(error))
    return f"{name}: {value}".strip().splitlines()[0][:300]


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def static_pictures(notebook) -> None:
    """A report is a static page, read offline: where a widget output carries a picture of its
    first view (`widgets.Explorer.show`), the page shows the picture, not the widget (which
    would need its JavaScript from a CDN and a kernel to be of use)."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if WIDGET_VIEW in output.get("data", {}) and "image/png" in output["data"]:
                del output["data"][WIDGET_VIEW]


class _NoAltTextWarning(logging.Filter):
    """nbconvert gives every figure a placeholder alt text and warns about it once per notebook:
    the one nbconvert line `make report` would print besides the results; the others stay."""

    def filter(self, record):
        return not record.getMessage().startswith("Alternative text is missing")


def _to_html(ipynb: Path) -> Path:
    import nbconvert
    import nbformat

    notebook = folded_solutions(nbformat.read(ipynb, as_version=4))
    static_pictures(notebook)
    exporter = nbconvert.HTMLExporter()
    exporter.log.addFilter(_NoAltTextWarning())
    body, _ = exporter.from_notebook_node(notebook)
    target = ipynb.with_suffix(".html")
    target.write_text(body, encoding="utf-8")
    return target


def _ipc_kernel_manager():
    """A kernel manager that talks to its kernel over local sockets, not TCP: no port opened, and
    no "running over TCP without encryption" warning from every kernel on the console."""
    import tempfile

    from jupyter_client.manager import KernelManager
    from traitlets import CaselessStrEnum, default

    class IPCKernelManager(KernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc")

        @default("ip")
        def _ip_default(self):  # an absolute path: the kernel may start in another folder
            return str(Path(tempfile.mkdtemp(prefix="tdexplain-kernel-")) / "kernel")

    return IPCKernelManager


def render_notebook(notebook: Path, out_dir: Path, parameters: dict | None = None,
                    kernel: str = "python3") -> Rendered:
    """Execute one notebook with papermill (in its own folder) and convert it to HTML."""
    _require_notebooks_extra()
    import papermill

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / notebook.name
    start = time.perf_counter()
    error = None
    try:
        papermill.execute_notebook(str(notebook), str(target), parameters=parameters or {},
                                   kernel_name=kernel, cwd=str(notebook.parent),
                                   progress_bar=False, kernel_manager_class=_ipc_kernel_manager())
    except Exception as exc:  # noqa: BLE001 - any failure is reported, the others still render
        error = _first_line_of_error(exc)
        log.error("%s failed: %s", notebook.name, error)
    seconds = time.perf_counter() - start
    page = None
    if target.exists():
        try:
            page = _to_html(target)
        except Exception as exc:  # noqa: BLE001
            error = error or f"HTML conversion failed: {_first_line_of_error(exc)}"
    if error is None:  # the editions of a notebook that ran to its end; a partial run gets none
        try:
            student = write_editions(target, out_dir)["student"]
            _to_html(student)
        except Exception as exc:  # noqa: BLE001
            error = f"the course editions failed: {_first_line_of_error(exc)}"
    return Rendered(notebook.name, target, page, seconds, error)


def first_figure(ipynb: Path) -> Path | None:
    """Save the executed notebook's first PNG output beside it (``name.png``) for the index."""
    import base64

    import nbformat

    if not ipynb.exists():
        return None
    for cell in nbformat.read(ipynb, as_version=4).cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                target = ipynb.with_suffix(".png")
                target.write_bytes(base64.b64decode(png))
                return target
    return None


def environment() -> dict:
    """What the reports ran on, read without importing the backends: Keras' backend (as Keras
    chooses it: KERAS_BACKEND, else ~/.keras/keras.json, else TensorFlow), the versions of
    tdexplain, Keras and the installed backends, Python and the machine."""
    import json
    from importlib import metadata

    backend = os.environ.get("KERAS_BACKEND")
    config = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "keras.json"
    if backend is None and config.is_file():
        backend = json.loads(config.read_text()).get("backend")
    versions = {}
    for package in ("tdexplain", "keras", "tensorflow", "jax"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return {"backend": backend or "tensorflow", "versions": versions,
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores"}


def write_index(results: list[Rendered], out_dir: Path, title: str = "tdexplain reports",
                parameters: dict | None = None, seconds: float | None = None,
                side_by_side: str = "1 at a time") -> Path:
    """The index page; `seconds`, the wall time of the whole rendering (default: the
    notebooks' times added up, what they take one at a time); `side_by_side`, how they ran."""
    _require_notebooks_extra()
    ran_on = environment()
    versions = ", ".join(f"{name} {version}" for name, version in ran_on["versions"].items())
    settings = (", ".join(f"{name} = {value!r}" for name, value in parameters.items()) if parameters
                else "each notebook's own defaults (course size)")
    rows = []
    for r in results:
        link = (f'<a href="{html.escape(r.html.name)}">{html.escape(r.notebook)}</a>'
                if r.html else html.escape(r.notebook))
        status = ("<span class=ok>ok</span>" if r.error is None
                  else f"<span class=failed>failed</span>: {html.escape(r.error)}")
        figure = first_figure(r.ipynb)
        thumbnail = (f'<img src="{html.escape(figure.name)}" alt="first figure of {html.escape(r.notebook)}">'
                     if figure else "no figure")
        rows.append(f"<tr><td>{link}</td><td>{r.seconds:.1f} s</td><td>{status}</td><td>{thumbnail}</td></tr>")
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.3em 1em;text-align:left;vertical-align:top}} .ok{{color:#1a7f37}} .failed{{color:#cf222e}}
img{{max-width:22em;max-height:12em}}</style>
</head><body><h1>{html.escape(title)}</h1>
<p>Generated {time.strftime('%Y-%m-%d %H:%M')} by <code>make report</code>, in
{sum(r.seconds for r in results) if seconds is None else seconds:.0f} s for {len(results)} notebooks,
{html.escape(side_by_side)}.</p>
<table class=about>
<tr><th>Keras backend</th><td>{html.escape(ran_on["backend"])}</td></tr>
<tr><th>versions</th><td>{html.escape(versions)}, Python {html.escape(ran_on["python"])}</td></tr>
<tr><th>machine</th><td>{html.escape(ran_on["machine"])}</td></tr>
<tr><th>parameters</th><td>{html.escape(settings)}</td></tr>
</table>
<table><tr><th>notebook</th><th>run time</th><th>status</th><th>first figure</th></tr>
{chr(10).join(rows)}
</table>
<p>To hand out: <code>student/</code> holds each notebook run, with its figures and exercises and
without its solutions, as a notebook and as a page; <code>instructor/</code> the same with the
solutions in place. The pages above fold each solution behind a click (for the instructor);
<code>instructor/README.md</code> gives this run's times and the answer key.</p></body></html>
"""
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def last_run_seconds(notebook: Path) -> float:
    """How long the notebook took when its stored outputs were last refreshed
    (`scripts/refresh_notebooks.py` keeps it in the metadata); 0 when it does not say, or
    cannot be read (its render then says why)."""
    try:
        return float(json.loads(Path(notebook).read_text(encoding="utf-8"))["metadata"]["tdexplain"]["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


def longest_first(notebooks) -> list:
    """The notebooks in the order they are handed to the workers: the longest last run first,
    then by name."""
    return sorted(sorted(notebooks), key=last_run_seconds, reverse=True)


def render_all(notebook_dir: Path, out_dir: Path, parameters: dict | None = None,
               jobs: int = 1, engine: str = "local", address: str | None = None,
               for_each: tuple | None = None) -> list[Rendered]:
    """Render every notebook of the folder, `jobs` at a time (each in its own process and
    kernel: a notebook spends much of its time in single-threaded Python, so two on two
    cores take little more than the longer of them), and write the index. The longest start
    first (by `last_run_seconds`), so that no long notebook is left to run alone at the end.

    for_each: (name, values): the reports once per value of the parameter `name` (a model
    per configuration, say), each value's in out_dir/<value> (a path's stem) with its own
    index; every notebook of every value is handed to the workers at once.
    engine "ray": each notebook is a Ray task of 1 CPU in a worker process of its own, on the
    cluster at `address` or $RAY_ADDRESS, else a local one (`jobs` is then the cluster's to
    choose); on several machines, the notebooks and `out_dir` must be on a filesystem they all see."""
    _require_notebooks_extra()
    notebooks = sorted(p for p in Path(notebook_dir).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebook (*.ipynb) in {notebook_dir}")
    if not (isinstance(jobs, int) and jobs >= 1):
        raise ValueError(f"jobs must be a whole number of at least 1, got {jobs!r}")
    check_engine(engine)
    runs = _runs(Path(out_dir).resolve(), parameters or {}, for_each)
    tasks = [(notebook.resolve(), folder, values) for notebook in longest_first(notebooks)
             for folder, values in runs.items()]
    start = time.perf_counter()
    if engine == "ray":
        results = _on_ray(tasks, address)
    elif jobs == 1:
        results = [_render(*task) for task in tasks]
    else:
        spawn = multiprocessing.get_context("spawn")  # no copy of a parent that loaded a backend
        with concurrent.futures.ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=spawn) as pool:
            results = list(pool.map(_render, *zip(*tasks)))
    seconds = time.perf_counter() - start
    for folder, values in runs.items():
        theirs = sorted((r for r in results if r.ipynb.parent == folder), key=lambda r: r.notebook)
        write_index(theirs, folder, parameters=values or None, seconds=seconds,
                    side_by_side="each as a Ray task" if engine == "ray" else f"{jobs} at a time")
        write_instructor_page(notebooks, {r.notebook: (r.seconds, r.error) for r in theirs}, folder, values or None)
    return sorted(results, key=lambda r: (str(r.ipynb.parent), r.notebook))


def _runs(out_dir: Path, parameters: dict, for_each) -> dict:
    """{output folder: the parameters its notebooks run with}: one, or one per value of for_each."""
    if not for_each:
        return {out_dir: parameters}
    name, values = for_each
    folders = [out_dir / (Path(value).stem if isinstance(value, (str, Path)) else str(value)) for value in values]
    if not values or len(set(folders)) < len(folders):
        raise ValueError(f"for_each needs values that name distinct folders; got {name}={list(values)}")
    return {folder: parameters | {name: value} for folder, value in zip(folders, values)}


def _render(notebook: Path, out_dir: Path, parameters: dict) -> Rendered:
    return render_notebook(notebook, out_dir, parameters)


def _on_ray(tasks: list, address) -> list[Rendered]:
    """Each (notebook, folder, parameters) rendered by a Ray task, in a worker process used for
    that notebook alone."""
    ray = connect_ray("tdexplain report --engine ray", address)
    render = ray.remote(num_cpus=1, max_calls=1)(_render)
    return ray.get([render.remote(*task) for task in tasks])


def load_parameters(path) -> dict:
    _require_notebooks_extra()
    import yaml

    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} must hold a mapping of parameter names to values")
    return values


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a whole number of at least 1, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("notebooks", nargs="?", default="notebooks",
                        help="folder of notebooks to render (default: %(default)s)")
    parser.add_argument("--out", default="reports", help="output folder (default: %(default)s)")
    parser.add_argument("--parameters", default=None,
                        help="YAML file of papermill parameters, e.g. notebooks/params/paper.yaml "
                             "(default: each notebook's own defaults)")
    parser.add_argument("--jobs", type=_at_least_one, default=min(2, os.cpu_count() or 1),
                        help="notebooks rendered at a time, each in its own process and kernel "
                             "(default: %(default)s: two, or one on a single core)")
    parser.add_argument("--engine", default="local", choices=ENGINES,
                        help="local: --jobs processes here; ray: one Ray task per notebook, on the "
                             "cluster at --address (default: %(default)s)")
    parser.add_argument("--address", default=None,
                        help="ray engine: the cluster to use (default: $RAY_ADDRESS, else a local one)")
    parser.add_argument("--for-each", default=None, type=_for_each, metavar="NAME=V1,V2,...",
                        help="the reports once per value of the parameter NAME (e.g. model_path=a.keras,"
                             "b.keras), each in OUT/<value>/ with its own index")


def _for_each(text: str) -> tuple:
    """NAME=V1,V2,...: each value read as a Python literal (5, 0.5, None), else kept as text (a path)."""
    import ast

    name, equals, values = text.partition("=")
    if not equals or not name or not values:
        raise argparse.ArgumentTypeError(f"expected NAME=V1,V2,..., got {text!r}")

    def literal(value: str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value

    return name, [literal(value) for value in values.split(",")]


def run(args: argparse.Namespace) -> int:
    """Render the reports; print one line per notebook; non-zero exit if any failed."""
    results = render_all(Path(args.notebooks), Path(args.out), load_parameters(args.parameters),
                         jobs=args.jobs, engine=args.engine, address=args.address, for_each=args.for_each)
    out = Path(args.out).resolve()
    for r in results:
        state = "ok" if r.error is None else f"FAILED: {r.error}"
        print(f"{str(r.ipynb.relative_to(out)):40s} {r.seconds:7.1f} s  {state}")
    failed = [str(r.ipynb.relative_to(out)) for r in results if r.error]
    for folder in sorted({r.ipynb.parent for r in results}):
        print(f"index: {Path(args.out) / folder.relative_to(out) / 'index.html'}")
    if failed:
        print(f"{len(failed)} of {len(results)} notebooks failed: {', '.join(failed)} "
              f"(their partial reports are in {args.out}/)", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tdexplain.workbook.report", description=__doc__)
    add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
