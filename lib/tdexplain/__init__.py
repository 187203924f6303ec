"""tdexplain: make the decisions of TimeDistributed(CNN) + GRU video classifiers visible.

The package is built in floors, each importing only from the floors below it
(tests/test_layers.py checks it): `engine` (what a video model is and the one compiled pass),
`methods` (the explanation methods, registered by name), `metrics` (measuring the maps),
`workbook` (the workbook's data, demo models, training, sweep and reports) and `interfaces`
(figures, whole videos, the explorers, the app, the command line). The names a user starts
from are here, in `__all__`; every other name has one home, in its module.

Importing tdexplain loads Keras and its backend with the backend's start-up notices silenced
(see `_load_backend_quietly`): import it before keras or tensorflow to keep them out of
notebooks, reports and the console. It also sets TF_CPP_MIN_LOG_LEVEL=2 for the process, when
not set: TensorFlow's later INFO and WARNING lines stay silent too, its errors do not.
"""

import contextlib
import importlib
import os
import re
import sys
import tempfile

__version__ = "0.1.0"

# The notices TensorFlow's C++ code writes to file descriptor 2 while it loads and looks for
# devices, in absl's format, whatever TF_CPP_MIN_LOG_LEVEL says (absl is not initialized yet):
# "I0000 00:00:1795442744.497267   24422 port.cc:153] oneDNN custom operations are on ...",
# and the cuInit error of a machine without a GPU. Other errors (E, F) are kept.
BACKEND_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [\w.]+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit: .*"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)$")


@contextlib.contextmanager
def _backend_logs_dropped():
    """Point file descriptor 2 (where C++ code writes) at a temporary file; on leaving, write back
    every line that is not one of the backend's start-up log lines: real errors still show."""
    sys.stderr.flush()
    stderr_fd = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(stderr_fd, 2)
            os.close(stderr_fd)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not BACKEND_LOG_LINE.match(line.rstrip("\n"))))
            sys.stderr.flush()


def _load_backend_quietly() -> None:
    """Import Keras (and so its backend) and let TensorFlow look for devices, its start-up log
    lines dropped."""
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _backend_logs_dropped():
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()  # where "failed call to cuInit" is logged


_load_backend_quietly()

from . import methods  # noqa: E402 - registers every explanation method before anything explains

# The names a user starts from, each imported from its one home on first use (importing
# tdexplain stays light: the interfaces load matplotlib and OpenCV's video code), and the
# modules the design's public API imports from here (DESIGN.md: `from tdexplain import data,
# models, explain, contours, metrics, viz`; `explain` and `metrics` are modules of this folder).
_STARTING_NAMES = {
    "Explainer": "engine.explainer", "Explanation": "engine.explainer",
    "METHODS": "methods", "DEFAULT_METHOD": "methods",
    "evaluate_methods": "metrics.evaluate",
    "load_model": "workbook.models", "read_video": "workbook.data",
    "explain_video": "interfaces.video",
}
_DESIGN_MODULES = {"data": "workbook.data", "models": "workbook.models", "explain": "explain",
                   "contours": "interfaces.contours", "metrics": "metrics", "viz": "interfaces.viz"}
__all__ = list(_STARTING_NAMES)


def __getattr__(name: str):
    if name in _STARTING_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_STARTING_NAMES[name]}"), name)
    if name in _DESIGN_MODULES:
        return importlib.import_module(f"{__name__}.{_DESIGN_MODULES[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__ + list(_DESIGN_MODULES))
