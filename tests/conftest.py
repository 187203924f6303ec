import functools
import importlib.abc
import os
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# `make test` runs the whole suite on TensorFlow, then the tests marked both_backends again
# with KERAS_BACKEND=jax: the one-pass engine against loops and finite differences
# (test_explain, test_temporal), the methods' contract (test_backends), training and the
# command line. The other methods' properties are checked on TensorFlow, and
# test_backends checks that JAX draws the same maps as TensorFlow for every method.
BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


class NoTensorFlow(importlib.abc.MetaPathFinder):
    """Makes `import tensorflow` fail, as on a machine without it (the JAX pass runs so: what
    the library does on JAX must not need TensorFlow, which is too big to carry to a GPU
    machine)."""

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError("TensorFlow is blocked in the JAX pass of the tests")


if BACKEND == "jax":
    sys.meta_path.insert(0, NoTensorFlow())
    # The JAX pass's models are tiny: compiling, not running, is its cost, and XLA's backend
    # compiles about twice as fast without its optimizations. The results agree to float32
    # rounding; test_backends compares JAX with TensorFlow at the default level, in a process
    # of its own.
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")


def pytest_configure(config):
    config.addinivalue_line("markers", "both_backends: also run with KERAS_BACKEND=jax")
    config.addinivalue_line("markers", "tensorflow_only: needs TensorFlow in the test process (skipped on JAX)")


def pytest_collection_modifyitems(config, items):
    # The notebooks' checks first, the longest notebook first (`make test` hands whole files to
    # two workers in this order, --no-loadscope-reorder): the many short test files then fill in
    # around them, and no long notebook is left to run alone at the end.
    from tdexplain.workbook import report  # here: importing tdexplain loads Keras, after the set-up above

    seconds = functools.cache(report.last_run_seconds)
    items.sort(key=lambda item: -seconds(item.path) if item.path.suffix == ".ipynb" else 0)
    if BACKEND == "tensorflow":
        return
    for item in items:
        if "tensorflow_only" in item.keywords or "both_backends" not in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"TensorFlow only (this run: {BACKEND})"))


@pytest.fixture(scope="module")
def two_io_model(tmp_path_factory):
    """A saved model with inputs [meta (5,), clip (4, 32, 32, 3)] and outputs [action (classes
    calm, fight), anomaly (one sigmoid)], and a .npy file of one meta value: (model path, meta
    path)."""
    import keras
    import numpy as np

    from tdexplain.workbook import models

    keras.utils.set_random_seed(2)
    frame = keras.Input((32, 32, 3))
    cnn = keras.Model(frame, keras.layers.GlobalAveragePooling2D()(
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(
            keras.layers.Rescaling(1 / 255, name="rescale")(frame))))
    meta, clip = keras.Input((5,), name="meta"), keras.Input((4, 32, 32, 3), name="clip")
    joined = keras.layers.Concatenate()([keras.layers.GRU(6)(keras.layers.TimeDistributed(cnn)(clip)),
                                         keras.layers.Dense(3)(meta)])
    model = keras.Model([meta, clip], [models.ClassProbabilities(("calm", "fight"), name="action")(joined),
                                       keras.layers.Dense(1, activation="sigmoid", name="anomaly")(joined)])
    folder = tmp_path_factory.mktemp("two_io")
    model.save(folder / "two.keras")
    np.save(folder / "meta.npy", np.linspace(-1, 1, 5).astype(np.float32))
    return folder / "two.keras", folder / "meta.npy"


# ---------------------------------------------------------------- the toy model most tests explain

@pytest.fixture(scope="module")
def model(request):
    """The paper's shape at toy size (VGG19 of width 1/16, a GRU of 8 units, one dense block) at
    the test module's FRAMES and SIZE, its weights drawn from the module's MODEL_SEED: each file
    its own weights, the same on every run and backend."""
    import keras

    from tdexplain.workbook import models

    keras.utils.set_random_seed(request.module.MODEL_SEED)
    return models.build_model(frames=request.module.FRAMES, size=request.module.SIZE, width=0.0625,
                              gru_units=8, dense_blocks=1)


@pytest.fixture(scope="module")
def explainer(model):
    from tdexplain import Explainer

    return Explainer(model)


@pytest.fixture(scope="module")
def clips(request):
    """Three synthetic clips (float32) at the module's FRAMES and SIZE, drawn from its CLIPS_SEED."""
    import numpy as np

    from tdexplain.workbook import data

    module = request.module
    return data.synthetic_dataset(n=3, frames=module.FRAMES, size=module.SIZE,
                                  seed=module.CLIPS_SEED)[0].astype(np.float32)


class _LocalRay:
    """Ray for the cluster engines' tests: `start()` a local cluster of 2 CPUs (the cores of
    CI's machine) when none runs; shut down when the test module is done."""

    def __init__(self):
        import ray

        self.ray = ray

    def start(self):
        if not self.ray.is_initialized():
            self.ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        return self.ray


@pytest.fixture(scope="module")
def local_ray():
    ray = _LocalRay()
    yield ray
    ray.ray.shutdown()
