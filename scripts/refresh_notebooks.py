"""Re-execute the notebooks and store only the outputs nbval checks.

Cells marked `# NBVAL_CHECK_OUTPUT` keep their output: `make test` (nbval --nbval-lax)
compares it with a fresh run. Every other output is cleared, so the notebooks stay small
in git and are handed out clean; `make report` renders them with all their figures. The run's
time goes into the notebook's metadata (`tdexplain.seconds`): `make report` starts the longest
first.
Usage: python scripts/refresh_notebooks.py [notebooks/NN_name.ipynb ...]
"""

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tdexplain.workbook.report import _ipc_kernel_manager

CHECK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=1800, kernel_name="python3", kernel_manager_class=_ipc_kernel_manager(),
                   record_timing=False,  # no per-cell timestamps in git
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in notebook.cells:
        if cell.cell_type == "code" and not cell.source.startswith(CHECK):
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)  # the explorers' state: regenerated on every run
    notebook.metadata["tdexplain"] = {"seconds": round(time.perf_counter() - start)}
    nbformat.write(notebook, path)
    print(f"refreshed {path.name} ({notebook.metadata.tdexplain.seconds} s)")


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        refresh(path)
