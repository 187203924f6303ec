"""What a lean install leaves out, and the error that says how to get it.

`pip install tdexplain` brings the library and the `tdexplain explain` and `train` commands;
the workbook's stack (JupyterLab, ipywidgets, papermill, nbconvert) is the `notebooks` extra.
A module or command that needs it calls `require` first, so that without it the user reads
which extra to install, not a ModuleNotFoundError from deep inside a dependency. The check
only looks the modules up (`importlib.util.find_spec`): it imports nothing.
"""

from __future__ import annotations

import importlib.util

__all__ = ["MissingExtra", "require"]


class MissingExtra(ImportError):
    """Modules of an optional extra are not installed; the message names the extra."""


def require(feature: str, *modules: str, extra: str = "notebooks") -> None:
    """Raise `MissingExtra` naming `extra` when one of `modules` cannot be imported."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtra(f"{feature} needs {', '.join(missing)}, which a plain install of tdexplain "
                           f"leaves out: pip install 'tdexplain[{extra}]'", name=missing[0])
