"""Re-execute the notebooks and store only the outputs nbval checks.

Cells marked `# NBVAL_CHECK_OUTPUT` keep their output: `make test` (nbval --nbval-lax)
compares it with a fresh run. Every other output is cleared, so the notebooks stay small
in git and are handed out clean; `make report` renders them with all their figures.
Usage: python scripts/refresh_notebooks.py [notebooks/NN_name.ipynb ...]
"""

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tdexplain.report import _ipc_kernel_manager

CHECK = "# NBVAL_CHECK_OUTPUT"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=1800, kernel_name="python3", kernel_manager_class=_ipc_kernel_manager(),
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    for cell in notebook.cells:
        if cell.cell_type == "code" and not cell.source.startswith(CHECK):
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.pop("widgets", None)  # the explorers' state: regenerated on every run
    nbformat.write(notebook, path)
    print(f"refreshed {path.name}")


if __name__ == "__main__":
    paths = [Path(p) for p in sys.argv[1:]] or sorted(NOTEBOOKS.glob("*.ipynb"))
    for path in paths:
        refresh(path)
