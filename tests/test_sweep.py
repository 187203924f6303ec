"""The hyperparameter sweep: its rows, resuming after a kill, failures, seeds, workers."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from tdexplain import data, metrics, models, sweep

BASE = dict(gru_units=16, dropout=0.25, dense_blocks=2)
OPTIONS = dict(head_epochs=3, progress=False)


def small_data():
    """A small task on the demo model's backbone (kept in one function so a subprocess can
    rebuild exactly the same data)."""
    return sweep.SweepData(models.load_model(), data.synthetic_dataset(24, 8, 64, seed=51)[:2],
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


def test_a_two_configuration_sweep_records_what_it_measured(sweep_data, tmp_path):
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 16])
    results = sweep.run_sweep(configs, sweep_data, tmp_path / "sweep.csv", **OPTIONS)
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
    np.testing.assert_allclose(results["chance"], masks.mean(), rtol=1e-5)


def test_the_row_equals_the_full_model_trained_the_same_way(sweep_data, tmp_path):
    """Scores and focus of one configuration against the same steps run by hand: the head
    trained on features of the base backbone, the maps from the full model."""
    config = dict(BASE, study="by hand")
    row = sweep.run_sweep([config], sweep_data, tmp_path / "one.csv", seeds=(3,), **OPTIONS).iloc[0]
    shared = sweep._shared(sweep_data, "block4_conv4")
    by_hand, maps = sweep._train_one(config, 3, shared, head_epochs=3, learning_rate=1e-3, patience=8,
                                     batch_size=32)
    for name in ("accuracy", "f1", "energy_inside", "pointing_game", "parameters"):
        np.testing.assert_allclose(row[name], by_hand[name], rtol=1e-5, err_msg=name)
    np.testing.assert_allclose(sweep.load_maps(tmp_path / "one.csv", row), maps, atol=1e-3)  # float16
    np.testing.assert_allclose(np.nanmean(metrics.energy_inside(maps, sweep_data.evaluation[2])),
                               row["energy_inside"], rtol=1e-5)
    # and the maps behind energy_inside come from a model holding the base backbone's weights
    np.testing.assert_array_equal(shared["backbone_weights"][0],
                                  models.backbone_of(sweep_data.base_model).get_weights()[0])


def test_a_failing_configuration_is_recorded_and_the_sweep_goes_on(sweep_data, tmp_path):
    configs = [dict(BASE, dropout=1.5), dict(BASE, gru_units=8), dict(BASE, kernel_size=5)]
    results = sweep.run_sweep(configs, sweep_data, tmp_path / "sweep.csv", **OPTIONS)
    assert list(results["status"]) == ["failed", "ok", "failed"]
    assert results.loc[0, "error"] == "ValueError: dropout must be in [0, 1), got 1.5"
    assert "kernel_size" in results.loc[2, "error"]
    assert results.loc[0, "accuracy"] != results.loc[0, "accuracy"]  # NaN: nothing measured


def test_the_base_configuration_is_trained_once_and_shown_in_every_study(sweep_data, tmp_path):
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 16], dropout=[0.0, 0.25])  # 16 / 0.25 is BASE
    results = sweep.run_sweep(configs, sweep_data, tmp_path / "sweep.csv", **OPTIONS)
    assert len(results) == 3 and results["config_id"].is_unique
    gru = sweep.study_table(results, BASE, "gru_units")
    dropout = sweep.study_table(results, BASE, "dropout")
    assert list(gru.index) == [8, 16] and list(dropout.index) == [0.0, 0.25]
    base_row = results[(results["gru_units"] == 16) & (results["dropout"] == 0.25)].iloc[0]
    assert gru.loc[16, ("f1", "mean")] == dropout.loc[0.25, ("f1", "mean")] == base_row["f1"]


def test_seeds_are_summarized_as_mean_and_spread(sweep_data, tmp_path):
    results = sweep.run_sweep([BASE], sweep_data, tmp_path / "sweep.csv", seeds=(0, 1, 2), **OPTIONS)
    assert sorted(results["seed"]) == [0, 1, 2]
    table = sweep.summarize(results)
    assert table[("seeds", "n")].tolist() == [3]
    np.testing.assert_allclose(table[("f1", "mean")].iloc[0], results["f1"].mean())
    np.testing.assert_allclose(table[("f1", "std")].iloc[0], results["f1"].std())


def test_parallel_workers_give_the_same_rows(sweep_data, tmp_path):
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 16])
    serial = sweep.run_sweep(configs, sweep_data, tmp_path / "serial.csv", **OPTIONS)
    parallel = sweep.run_sweep(configs, sweep_data, tmp_path / "parallel.csv", workers=2, **OPTIONS)
    parallel = parallel.set_index("config_id").loc[serial["config_id"]].reset_index()
    for name in ("accuracy", "f1", "energy_inside", "pointing_game", "epochs_run"):
        np.testing.assert_allclose(parallel[name], serial[name], rtol=1e-4, atol=1e-6, err_msg=name)


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_sweep import small_data, BASE, OPTIONS
    from tdexplain import sweep
    configs = sweep.one_at_a_time(BASE, gru_units=[8, 12, 16, 20])
    sweep.run_sweep(configs, small_data(), sys.argv[1], **OPTIONS)
""")


def test_a_killed_sweep_resumes_without_repeating_or_losing_rows(tmp_path):
    out = tmp_path / "sweep.csv"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=os.path.dirname(__file__)))
    process = subprocess.Popen([sys.executable, str(script), str(out)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.2)  # wait for the header and two finished rows
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = pd.read_csv(out)
    assert 2 <= len(finished) < 4, "the sweep was meant to be killed midway"

    results = sweep.run_sweep(sweep.one_at_a_time(BASE, gru_units=[8, 12, 16, 20]), small_data(), out,
                              **OPTIONS)
    assert sorted(results["gru_units"]) == [8, 12, 16, 20]
    assert results["config_id"].is_unique
    # the rows finished before the kill are kept as they were
    pd.testing.assert_frame_equal(results.iloc[:len(finished)][finished.columns].reset_index(drop=True),
                                  finished, check_dtype=False)


def test_bad_sweeps_are_refused(sweep_data, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        sweep.run_sweep([], sweep_data, tmp_path / "x.csv")


def test_a_half_written_row_is_dropped_on_resume(sweep_data, tmp_path):
    out = tmp_path / "sweep.csv"
    first = sweep.run_sweep([BASE], sweep_data, out, **OPTIONS)
    with out.open("a") as f:
        f.write('"{""dense_blocks"": 2, ""dropout')  # the kill came in the middle of a row
    results = sweep.run_sweep([BASE, dict(BASE, gru_units=8)], sweep_data, out, **OPTIONS)
    assert len(results) == 2 and results.loc[0, "config_id"] == first.loc[0, "config_id"]
