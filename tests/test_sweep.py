"""The hyperparameter sweep: its rows, resuming after a kill, failures, seeds, workers."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pandas as pd
import pytest

from tdexplain import Explainer, load_model
from tdexplain.metrics import localization
from tdexplain.workbook import data, models, sweep, synthetic, training

BASE = dict(gru_units=16, dropout=0.25, dense_blocks=2)
OPTIONS = dict(head_epochs=3, progress=False)


def small_data():
    """A small task on the demo model's backbone (kept in one function so a subprocess can
    rebuild exactly the same data)."""
    return sweep.SweepData(load_model(), data.synthetic_dataset(72, 8, 64, seed=51)[:2],
                           data.synthetic_dataset(9, 8, 64, seed=52)[:2],
                           data.synthetic_dataset(6, 8, 64, seed=53))


@pytest.fixture(scope="module")
def sweep_data():
    return small_data()


def test_grids_are_plain_data():
    assert sweep.grid(gru_units=[8, 16], dropout=[0.0]) == [{"gru_units": 8, "dropout": 0.0},
                                                            {"gru_units": 16, "dropout": 0.0}]
    studies = sweep.one_at_a_time(BASE, gru_units=[8, 16], dense_blocks=[3])
    assert studies == [dict(BASE, gru_units=8, study="gru_units"), dict(BASE, gru_units=16, study="gru_units"),
                       dict(BASE, dense_blocks=3, study="dense_blocks")]


@pytest.fixture(scope="module")
def two_configurations(sweep_data, tmp_path_factory):
    """A serial sweep of two configurations: (its CSV, its rows)."""
    out = tmp_path_factory.mktemp("two") / "sweep.csv"
    return out, sweep.run_sweep(sweep.one_at_a_time(BASE, gru_units=[8, 16]), sweep_data, out, **OPTIONS)


def _resumed_from(two_configurations, folder):
    """A copy of the two-configuration sweep's CSV and maps in `folder`, to resume from."""
    import shutil

    out, _ = two_configurations
    shutil.copy(out, folder / out.name)
    shutil.copytree(out.parent / f"{out.stem}_maps", folder / f"{out.stem}_maps")
    return folder / out.name


def test_the_frame_features_are_computed_once_per_data(sweep_data, monkeypatch):
    """A second sweep on the same data (the base configuration's other seeds in notebook 06)
    reuses the first one's features instead of running the backbone again."""
    calls = []
    features = training.frame_features
    monkeypatch.setattr(training, "frame_features", lambda *a, **k: calls.append(1) or features(*a, **k))
    fresh = sweep.SweepData(sweep_data.base_model, sweep_data.train, sweep_data.validation, sweep_data.evaluation)
    first = sweep._shared(fresh, "block4_conv4")
    again = sweep._shared(fresh, "block3_conv4")
    assert len(calls) == 2  # the training and the validation clips, once
    assert again["train"][0] is first["train"][0] and again["layer"] == "block3_conv4"


def test_a_two_configuration_sweep_records_what_it_measured(sweep_data, two_configurations):
    out, results = two_configurations
    assert len(results) == 2 and (results["status"] == "ok").all()
    for column in ("config_id", "seed", "gru_units", "dropout", "dense_blocks", "accuracy",
                   "precision", "recall", "f1", "f1_fight", "precision_shooting", "recall_normal",
                   "energy_inside", "pointing_game", "chance", "train_seconds", "epochs_run", "parameters"):
        assert column in results.columns, column
    assert list(results["gru_units"]) == [8, 16]
    assert results[["accuracy", "f1", "energy_inside", "pointing_game"]].apply(lambda c: c.between(0, 1)).all().all()
    assert (results["epochs_run"] <= 3).all()
    # The row's numbers are those of the configuration's model, recomputed here independently:
    # its parameter count, and the chance level of the evaluation masks.
    clips, labels, masks = sweep_data.evaluation
    model = models.build_model(frames=8, size=64, width=0.125, gru_units=8, dropout=0.25, dense_blocks=2)
    assert results.loc[0, "parameters"] == model.count_params()
    # (per clip, the evidence's share of the frames that hold it; normal clips have none)
    per_clip = [clip_masks[clip_masks.any(axis=(1, 2))].mean() for clip_masks in masks if clip_masks.any()]
    np.testing.assert_allclose(results["chance"], np.mean(per_clip), rtol=1e-5)
    # The stored predictions are the row's: they give its accuracy and its F1.
    for _, row in results.iterrows():
        predicted = sweep.load_predictions(out, row)
        assert (predicted == labels).mean() == pytest.approx(row["accuracy"])
        assert training.scores(labels, predicted, synthetic.CLASSES)["f1"] == pytest.approx(row["f1"])


def test_the_f1_interval_is_a_bootstrap_over_clips_of_the_seeds_mean():
    """Predictions written by hand: a perfect seed, and one that calls every clip class 0. Drawn
    class by class, every resample keeps two clips of each class, so the perfect seed's F1 is 1
    and the other's 1/6 (class 0: precision 1/3, recall 1, F1 1/2; the others 0) in every draw:
    the interval of their mean is the point 7/12. Drawn over all clips at once it would vary."""
    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect, all_zero = labels, np.zeros(6, int)
    assert sweep.f1_interval([perfect, all_zero], labels, synthetic.CLASSES, samples=200) == pytest.approx((7 / 12, 7 / 12))
    assert sweep.f1_interval([perfect], labels, synthetic.CLASSES, samples=200) == (1.0, 1.0)
    # One mistake: the F1 varies with the draw, and the interval holds the F1 on all clips.
    one_wrong = np.array([0, 1, 2, 0, 1, 0])
    low, high = sweep.f1_interval([one_wrong], labels, synthetic.CLASSES, samples=400)
    assert low < training.scores(labels, one_wrong, synthetic.CLASSES)["f1"] < high <= 1
    # Every seed is scored on the same draw: two copies of a seed give that seed's interval
    # (independent draws would average out and narrow it).
    assert sweep.f1_interval([one_wrong, one_wrong], labels, synthetic.CLASSES, samples=400) == (low, high)
    with pytest.raises(ValueError, match=r"one per seed, each shaped like labels \(6,\)"):
        sweep.f1_interval([one_wrong[:5]], labels, synthetic.CLASSES)
    with pytest.raises(ValueError, match="one per seed"):
        sweep.f1_interval([], labels, synthetic.CLASSES)
    with pytest.raises(ValueError, match="wrap one seed's in a list"):
        sweep.f1_interval(one_wrong, labels, synthetic.CLASSES)


def test_the_row_equals_the_model_trained_by_hand_with_plain_keras(sweep_data, tmp_path, monkeypatch):
    """One configuration of the sweep against the same training written out here in plain
    Keras, not through the sweep's or the training module's code: the model built with the
    sweep's seed, the base model's CNN copied into it and frozen, the layers after the
    TimeDistributed CNN trained on the base CNN's per-frame features with
    Adam(1e-3, clipnorm=1) on sparse categorical cross-entropy, batches of 32 in an order
    drawn anew each epoch from np.random.default_rng(seed), the last batch completed with the
    epoch's first clips, one batch a step (the sweep runs an epoch per step), 3 epochs, early stopping on the
    validation loss keeping the best weights. The row must hold this model's scores, and the
    model whose maps the sweep measured must hold this model's weights."""
    seed, epochs, learning_rate, batch_size, patience = 3, OPTIONS["head_epochs"], 1e-3, 32, 8
    explained = []  # the model the sweep hands to the Explainer

    class RecordingExplainer(Explainer):
        def __init__(self, model, *args, **kwargs):
            explained.append(model)
            super().__init__(model, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(sweep, "Explainer", RecordingExplainer)
        row = sweep.run_sweep([dict(BASE, study="by hand")], sweep_data, tmp_path / "one.csv",
                              seeds=(seed,), **OPTIONS).iloc[0]
    assert row["status"] == "ok" and len(explained) == 1, row.get("error")

    # By hand. The base model's CNN as a feature extractor, run in batches of 8 clips (64 frames).
    base = sweep_data.base_model
    base_cnn = base.get_layer("time_distributed_vgg19")
    extractor = keras.Model(base.inputs[0], base_cnn.output)

    def features(clips):
        return extractor.predict(np.asarray(clips, np.float32), batch_size=8, verbose=0)

    x, y = features(sweep_data.train[0]), np.asarray(sweep_data.train[1])
    validation = (features(sweep_data.validation[0]), np.asarray(sweep_data.validation[1]))

    keras.utils.set_random_seed(seed)  # right before the model is built: its initial weights
    model = models.build_model(frames=8, size=64, width=0.125, **BASE)
    cnn = model.get_layer("time_distributed_vgg19").layer
    cnn.set_weights(base_cnn.layer.get_weights())
    cnn.trainable = False
    head_in = keras.Input(base_cnn.output.shape[1:])
    h = head_in
    for name in ("gru", "dense_1", "dropout_1", "dense_2", "dropout_2", "class_probabilities"):
        h = model.get_layer(name)(h)  # the full model's own layers: training the head trains it
    head = keras.Model(head_in, h)
    head.compile(optimizer=keras.optimizers.Adam(learning_rate, clipnorm=1.0),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Shuffled(keras.utils.PyDataset):
        """(x, y) in batches of `batch_size`, epoch e in the order of the e-th permutation drawn
        from np.random.default_rng(seed): the dropout masks follow a sample's place in its
        batch, so the order must be the sweep's. The epoch is set by a callback, which knows
        it (Keras calls a dataset's own on_epoch_begin/end hooks at other times as well)."""

        def __init__(self):
            super().__init__()
            rng = np.random.default_rng(seed)
            orders = [rng.permutation(len(x)) for _ in range(epochs)]
            self.orders = [np.concatenate([o, o[:-len(x) % batch_size]]) for o in orders]  # full batches
            self.epoch = 0

        def __len__(self):
            return len(self.orders[0]) // batch_size

        def __getitem__(self, index):
            batch = self.orders[self.epoch][index * batch_size:(index + 1) * batch_size]
            return x[batch], y[batch]

    batches = Shuffled()
    set_epoch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: setattr(batches, "epoch", epoch))
    stop = keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)
    history = head.fit(batches, validation_data=validation, epochs=epochs, callbacks=[set_epoch, stop],
                       verbose=0)

    # (b) the model the sweep explained holds the hand-trained weights, CNN and head alike.
    # Same ops on the same arrays in the same order on one CPU: the weights come out equal to
    # the bit, so no tolerance is needed.
    swept = explained[0].get_weights()
    assert len(swept) == len(model.get_weights())
    for index, (a, b) in enumerate(zip(swept, model.get_weights())):
        np.testing.assert_array_equal(a, b, err_msg=f"weight {index}")
    for a, b in zip(models.backbone_of(explained[0]).get_weights(), base_cnn.layer.get_weights()):
        np.testing.assert_array_equal(a, b)  # the base model's CNN, untouched by the training

    # (a) the row's scores are those of the hand-trained model, computed here.
    clips, labels, masks = sweep_data.evaluation
    predicted = model.predict(np.asarray(clips, np.float32), verbose=0).argmax(axis=1)
    f1 = []  # per class, 2 TP / (predicted + actual): 2PR / (P + R); 0 without a hit
    for c in range(len(synthetic.CLASSES)):
        hits = np.sum((predicted == c) & (labels == c))
        f1.append(2 * hits / (np.sum(predicted == c) + np.sum(labels == c)) if hits else 0.0)
    hand = {"accuracy": np.mean(predicted == labels), "f1": np.mean(f1),
            "epochs_run": len(history.history["loss"]), "parameters": model.count_params()}
    maps = Explainer(model).explain(clips, methods="gradcam", layer="block4_conv4",
                                    target=labels).maps["gradcam"]
    found = localization.localization(maps, masks)
    hand.update(energy_inside=np.nanmean(found["energy_inside"]),
                pointing_game=np.nanmean(found["pointing_game"]))
    for name, value in hand.items():
        np.testing.assert_allclose(row[name], value, rtol=1e-6, err_msg=name)  # the CSV's decimals
    assert row["epochs_run"] == epochs  # 3 epochs are too few for early stopping at patience 8
    np.testing.assert_allclose(sweep.load_maps(tmp_path / "one.csv", row), maps, atol=1e-3)  # float16


def test_a_failing_configuration_is_recorded_and_the_sweep_goes_on(sweep_data, tmp_path):
    configs = [dict(BASE, dropout=1.5), dict(BASE, gru_units=8), dict(BASE, kernel_size=5),
               dict(BASE, block_dropout=1.5)]
    results = sweep.run_sweep(configs, sweep_data, tmp_path / "sweep.csv", **OPTIONS)
    assert list(results["status"]) == ["failed", "ok", "failed", "failed"]
    assert results.loc[0, "error"] == "ValueError: dropout must be in [0, 1), got 1.5"
    assert "kernel_size" in results.loc[2, "error"]
    assert results.loc[3, "error"] == "ValueError: block_dropout must be in [0, 1), got 1.5"
    assert results.loc[0, "accuracy"] != results.loc[0, "accuracy"]  # NaN: nothing measured


def test_the_base_configuration_is_trained_once_and_shown_in_every_study(sweep_data, two_configurations,
                                                                         tmp_path, monkeypatch):
    out = _resumed_from(two_configurations, tmp_path)  # gru_units 8 and 16 at dropout 0.25 are done
    base = dict(BASE, dropout=0.0)  # listed by both studies, not trained yet
    configs = sweep.one_at_a_time(base, gru_units=[8, 16], dropout=[0.0, 0.25])
    trained = []
    task = sweep._task
    monkeypatch.setattr(sweep, "_task", lambda config, seed, *a: trained.append(config) or task(config, seed, *a))
    results = sweep.run_sweep(configs, sweep_data, out, **OPTIONS)
    assert [(c["gru_units"], c["dropout"]) for c in trained] == [(8, 0.0), (16, 0.0)]  # the base once
    assert len(results) == 4 and results["config_id"].is_unique
    gru = sweep.study_table(results, base, "gru_units")
    dropout = sweep.study_table(results, base, "dropout")
    assert list(gru.index) == [8, 16] and list(dropout.index) == [0.0, 0.25]
    base_row = results[(results["gru_units"] == 16) & (results["dropout"] == 0.0)].iloc[0]
    assert gru.loc[16, ("f1", "mean")] == dropout.loc[0.0, ("f1", "mean")] == base_row["f1"]


def test_a_sweep_without_block_dropout_resumes_with_it(sweep_data, two_configurations, tmp_path, monkeypatch):
    """The dense blocks' own rate is a hyperparameter of the sweep: it reaches build_model, and
    a CSV written before it existed resumes (its rows keep their ids, their block_dropout is empty)."""
    out = _resumed_from(two_configurations, tmp_path)  # gru_units 8 and 16, one rate for all dropout
    built = []
    build = models.build_model
    monkeypatch.setattr(models, "build_model", lambda **kwargs: built.append(kwargs) or build(**kwargs))
    base = dict(BASE, block_dropout=0.5)
    results = sweep.run_sweep([dict(BASE, gru_units=8), base], sweep_data, out, **OPTIONS)
    assert len(built) == 1 and built[0]["dropout"] == 0.25 and built[0]["block_dropout"] == 0.5
    assert list(results["config_id"][:2]) == list(two_configurations[1]["config_id"])
    assert results["block_dropout"].isna().tolist() == [True, True, False]
    assert results.loc[2, "status"] == "ok" and results.loc[2, "block_dropout"] == 0.5
    rows = sweep.study_rows(results, base, "gru_units")
    assert list(rows["gru_units"]) == [16] and rows["block_dropout"].tolist() == [0.5]


def test_seeds_are_summarized_as_mean_and_spread(sweep_data, two_configurations, tmp_path):
    out = _resumed_from(two_configurations, tmp_path)  # BASE with seed 0 is done: seed 1 runs
    results = sweep.run_sweep([BASE], sweep_data, out, seeds=(0, 1), **OPTIONS)
    results = results[results["gru_units"] == BASE["gru_units"]]
    assert sorted(results["seed"]) == [0, 1]
    table = sweep.summarize(results)
    assert table[("seeds", "n")].tolist() == [2]
    np.testing.assert_allclose(table[("f1", "mean")].iloc[0], results["f1"].mean())
    np.testing.assert_allclose(table[("f1", "std")].iloc[0], results["f1"].std())


def test_parallel_workers_give_the_same_rows(sweep_data, two_configurations, tmp_path):
    _, serial = two_configurations
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 16])
    parallel = sweep.run_sweep(configs, sweep_data, tmp_path / "parallel.csv", workers=2, **OPTIONS)
    parallel = parallel.set_index("config_id").loc[serial["config_id"]].reset_index()
    for name in ("accuracy", "f1", "energy_inside", "pointing_game", "epochs_run"):
        np.testing.assert_allclose(parallel[name], serial[name], rtol=1e-4, atol=1e-6, err_msg=name)


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_sweep import small_data, BASE, OPTIONS
    from tdexplain.workbook import sweep
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 12, 16, 20])
    sweep.run_sweep(configs, small_data(), sys.argv[1], engine=sys.argv[2], **OPTIONS)
""")


def _killed_sweep(out, engine: str):
    """The four-configuration sweep in a process group of its own (with the local Ray cluster
    it starts, on Ray), killed with SIGKILL once two rows are in `out`: the rows it finished."""
    script = out.parent / "run.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__)))
    process = subprocess.Popen([sys.executable, str(script), str(out), engine], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and (
            not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.05)  # wait for the header and two finished rows
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = pd.read_csv(out)
    assert 2 <= len(finished) < 4, "the sweep was meant to be killed midway"
    return finished


def _check_resumed(results, finished):
    """Every configuration once, the rows finished before the kill kept as they were."""
    assert sorted(results["gru_units"]) == [8, 12, 16, 20]
    assert results["config_id"].is_unique and (results["status"] == "ok").all()
    pd.testing.assert_frame_equal(results.iloc[:len(finished)][finished.columns].reset_index(drop=True),
                                  finished, check_dtype=False)


def test_a_killed_sweep_resumes_without_repeating_or_losing_rows(tmp_path):
    out = tmp_path / "sweep.csv"
    finished = _killed_sweep(out, "local")
    results = sweep.run_sweep(sweep.one_at_a_time(BASE, gru_units=[8, 12, 16, 20]), small_data(), out,
                              **OPTIONS)
    _check_resumed(results, finished)


# The Ray Tune engine, on a local Ray cluster of 2 CPUs (conftest's local_ray).

def test_the_ray_engine_gives_the_local_engine_s_rows_and_maps(sweep_data, two_configurations, local_ray,
                                                               tmp_path):
    local_out, serial = two_configurations
    local_ray.start()
    out = tmp_path / "tune.csv"
    on_ray = sweep.run_sweep(sweep.one_at_a_time(BASE, gru_units=[8, 16]), sweep_data, out, engine="ray",
                             **OPTIONS)
    assert sorted(on_ray["config_id"]) == sorted(serial["config_id"])
    on_ray = on_ray.set_index("config_id").loc[serial["config_id"]].reset_index()
    for name in ("accuracy", "f1", "energy_inside", "pointing_game", "epochs_run", "parameters"):
        np.testing.assert_allclose(on_ray[name], serial[name], rtol=1e-4, atol=1e-6, err_msg=name)
    for (_, ours), (_, theirs) in zip(on_ray.iterrows(), serial.iterrows()):
        np.testing.assert_allclose(sweep.load_maps(out, ours), sweep.load_maps(local_out, theirs), atol=2e-3)
        np.testing.assert_array_equal(sweep.load_predictions(out, ours), sweep.load_predictions(local_out, theirs))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune.csv", "tune_maps"]  # the experiment is gone


def test_a_killed_ray_sweep_restores_its_experiment(local_ray, tmp_path, monkeypatch):
    """The driver and its local cluster are killed once two trials are in the CSV; started
    again, the sweep restores the Tune experiment the kill left, finishes it, and starts no
    trial of its own."""
    from ray import tune

    out = tmp_path / "sweep.csv"
    finished = _killed_sweep(out, "ray")
    assert tune.Tuner.can_restore(tmp_path / "sweep_tune")
    restored, started = [], []
    restore, new = tune.Tuner.restore, tune.Tuner.__init__
    monkeypatch.setattr(tune.Tuner, "restore", classmethod(
        lambda cls, path, *a, **k: restored.append(path) or restore(path, *a, **k)))
    monkeypatch.setattr(tune.Tuner, "__init__", lambda self, *a, **k: started.append(
        "_tuner_internal" not in k) or new(self, *a, **k))  # True: a new experiment, not a restored one
    local_ray.start()
    results = sweep.run_sweep(sweep.one_at_a_time(BASE, gru_units=[8, 12, 16, 20]), small_data(), out,
                              engine="ray", **OPTIONS)
    _check_resumed(results, finished)
    assert restored == [str(tmp_path / "sweep_tune")] and started == [False]
    assert all(sweep.maps_path(out, row["config_id"]).exists() for _, row in results.iterrows())
    assert not (tmp_path / "sweep_tune").exists()


def test_the_ray_engine_refuses_a_trial_no_machine_can_hold(sweep_data, local_ray, tmp_path):
    local_ray.start()
    with pytest.raises(ValueError, match=r"no machine of the Ray cluster can hold a task of 1 CPU and 1 GPU; "
                                         r"its machines have: 2 CPU and 0 GPU"):
        sweep.run_sweep([BASE], sweep_data, tmp_path / "x.csv", engine="ray", gpus_per_trial=1, **OPTIONS)
    assert not (tmp_path / "x.csv").exists()


def test_bad_sweeps_are_refused(sweep_data, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        sweep.run_sweep([], sweep_data, tmp_path / "x.csv")
    with pytest.raises(ValueError, match=r"engine must be one of \('local', 'ray'\), got 'spark'"):
        sweep.run_sweep([BASE], sweep_data, tmp_path / "x.csv", engine="spark")


def test_a_half_written_row_is_dropped_on_resume(sweep_data, two_configurations, tmp_path):
    out = _resumed_from(two_configurations, tmp_path)
    with out.open("a") as f:
        f.write('"{""dense_blocks"": 2, ""dropout')  # the kill came in the middle of a row
    results = sweep.run_sweep([BASE, dict(BASE, gru_units=8), dict(BASE, gru_units=12)], sweep_data, out,
                              **OPTIONS)  # the two done are not run again; the third row follows them
    assert len(results) == 3
    pd.testing.assert_frame_equal(results.iloc[:2][two_configurations[1].columns], two_configurations[1])
    assert results.loc[2, "gru_units"] == 12 and results.loc[2, "status"] == "ok"


def test_the_paper_s_tables_are_read_as_printed():
    """Tables 1-3 of the paper, in the layout of study_table: the rows the paper prints, and
    a few values checked against its text (Table 1's 88.4 is a precision, though the text
    calls it accuracy; Table 2's 75% row is a working model)."""
    gru, dropout, blocks = (sweep.paper_table(s) for s in ("gru_units", "dropout", "dense_blocks"))
    assert list(gru.index) == [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    assert list(dropout.index) == [0.0, 0.25, 0.5, 0.75] and list(blocks.index) == [2, 3, 4]
    assert list(gru.columns) == ["accuracy", "precision", "recall", "f1"]
    assert gru.loc[1024].tolist() == pytest.approx([0.863, 0.884, 0.863, 0.873])
    assert dropout.loc[0.75, "accuracy"] == pytest.approx(0.846) and dropout.loc[0.75, "f1"] == pytest.approx(0.815)
    assert blocks["f1"].idxmax() == 3 and gru["f1"].idxmax() == 64
    with pytest.raises(ValueError, match="no table for 'width'; its studies: gru_units, dropout, dense_blocks"):
        sweep.paper_table("width")


def test_maps_saved_before_predictions_were_kept_say_what_to_do(tmp_path):
    out = tmp_path / "sweep.csv"
    path = sweep.maps_path(out, "old row")
    path.parent.mkdir(parents=True)
    np.savez_compressed(path, gradcam=np.zeros((6, 1, 2, 2), np.float16))
    with pytest.raises(ValueError, match="saved before the sweep kept predictions: delete its row"):
        sweep.load_predictions(out, {"config_id": "old row"})
