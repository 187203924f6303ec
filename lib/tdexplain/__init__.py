"""tdexplain: make the decisions of TimeDistributed(CNN) + GRU video classifiers visible.

Importing tdexplain loads Keras and its backend with the backend's start-up notices silenced
(see `_load_backend_quietly`): import it before keras or tensorflow to keep them out of
notebooks, reports and the console. It also sets TF_CPP_MIN_LOG_LEVEL=2 for the process, when
not set: TensorFlow's later INFO and WARNING lines stay silent too, its errors do not.
"""

import contextlib
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
