"""The `tdexplain` command on real files: outputs checked field by field, and every bad input."""

import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import tdexplain
from tdexplain import DEFAULT_METHOD, load_model
from tdexplain.engine import shapes
from tdexplain.interfaces import cli, video
from tdexplain.workbook import data, models

FIGHT = data.sample_path("clips/fight_01.mp4")


def _frames_and_size(path):
    capture = cv2.VideoCapture(str(path))
    count, shape = 0, None
    while True:
        ok, frame = capture.read()
        if not ok:
            return count, shape
        count, shape = count + 1, frame.shape


@pytest.mark.both_backends
def test_explain_a_shipped_clip(tmp_path, capsys):
    out = tmp_path / "fight"
    assert cli.main(["explain", FIGHT, "--out", str(out), "--quiet"]) == 0
    assert "1 window explained; verdict: fight" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["video"] == {"path": FIGHT, "frames": 24, "fps": 8.0, "width": 128,
                                "height": 128, "duration_seconds": 3.0}
    assert summary["model"]["classes"] == ["normal", "fight", "shooting"]
    assert summary["model"]["note"] is None  # a shipped synthetic clip: what the demo model knows
    assert summary["complete"] is True and summary["method"] == DEFAULT_METHOD
    assert summary["layer"] is None  # the default method attributes pixels: no layer is involved
    windows = summary["windows"]
    # The default window is the demo model's clip: 24 frames (3 s at 8 fps) read as 8.
    assert [(w["first_frame"], w["last_frame"], w["start_seconds"]) for w in windows] == [(0, 23, 0.0)]
    assert windows[0]["frames_seen"] == [0, 3, 7, 10, 13, 16, 20, 23]
    for w in windows:
        assert set(w["probabilities"]) == {"normal", "fight", "shooting"}
        assert sum(w["probabilities"].values()) == pytest.approx(1, abs=1e-3)
        assert w["predicted"] == max(w["probabilities"], key=w["probabilities"].get)
        assert len(w["frame_importance"]) == 8 and all(isinstance(v, float) for v in w["frame_importance"])
        assert [f["frame"] for f in w["frames"]] == w["frames_seen"]
        for frame in w["frames"]:
            for contour in frame["contours"]:
                assert set(contour) >= {"level", "area", "centroid", "peak"}
                assert 0 <= contour["centroid"][0] < 128 and contour["area"] > 0
    assert windows[0]["predicted"] == summary["verdict"]["class"] == "fight"
    assert _frames_and_size(out / "overlay.mp4") == (24, (128, 128, 3))
    assert cv2.imread(str(out / "timeline.png")) is not None


@pytest.mark.both_backends
def test_a_long_video_flags_the_window_with_the_shooting(tmp_path):
    # Four 3-second scenes of 24 frames at 8 fps: normal, normal, shooting, normal.
    scenes = [data.synthetic_clip(label, 24, 64, seed=seed).frames
              for label, seed in (("normal", 11), ("normal", 12), ("shooting", 13), ("normal", 14))]
    path = data.write_video(tmp_path / "long.mp4", np.concatenate(scenes), fps=8)
    out = tmp_path / "long"
    assert cli.main(["explain", str(path), "--out", str(out), "--quiet", "--method", "layercam",
                     "--layer", "block4_conv4", "--stride", "24"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [w["predicted"] for w in summary["windows"]] == ["normal", "normal", "shooting", "normal"]
    assert summary["verdict"]["window"] == 2 and summary["verdict"]["start_seconds"] == 6.0
    assert summary["layer"] == "block4_conv4"
    assert _frames_and_size(out / "overlay.mp4") == (96, (64, 64, 3))
    # Not a shipped sample: the demo model's answer comes with its warning.
    assert "--model" in summary["model"]["note"] and "synthetic scenes" in summary["model"]["note"]


def test_overlapping_windows_and_one_window_over_the_whole_video(tmp_path):
    out = tmp_path / "overlap"
    assert cli.main(["explain", FIGHT, "--out", str(out), "--quiet", "--window", "8",
                     "--stride", "4"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [w["first_frame"] for w in summary["windows"]] == [0, 4, 8, 12, 16]
    assert _frames_and_size(out / "overlay.mp4")[0] == 24  # each frame written once
    apart = tmp_path / "apart"  # a stride longer than the window: frames 8-15 are no window's
    assert cli.main(["explain", FIGHT, "--out", str(apart), "--quiet", "--window", "8", "--stride", "16"]) == 0
    summary = json.loads((apart / "summary.json").read_text())
    assert [(w["first_frame"], w["last_frame"]) for w in summary["windows"]] == [(0, 7), (16, 23)]
    assert summary["overlay_frames"] == _frames_and_size(apart / "overlay.mp4")[0] == 16
    assert summary["video"]["frames"] == 24
    whole = tmp_path / "whole"
    assert cli.main(["explain", FIGHT, "--out", str(whole), "--quiet", "--window", "0"]) == 0
    summary = json.loads((whole / "summary.json").read_text())
    assert len(summary["windows"]) == 1
    assert summary["windows"][0]["frames_seen"] == [0, 3, 7, 10, 13, 16, 20, 23]


def test_the_default_window_is_three_seconds_at_any_frame_rate(tmp_path):
    """At 16 fps a window is 48 frames, one every 16: the 3 s the demo model reads as one clip."""
    path = data.write_video(tmp_path / "fast.mp4", data.synthetic_clip("fight", 64, 64, seed=5).frames, fps=16)
    assert cli.main(["explain", str(path), "--out", str(tmp_path / "out"), "--quiet", "--method", "saliency"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["window"], summary["stride"]) == (48, 16)
    assert [(w["first_frame"], w["last_frame"]) for w in summary["windows"]] == [(0, 47), (16, 63)]


def test_the_frames_after_the_last_full_window_are_explained_too(tmp_path):
    """30 frames at 8 fps: one window of 24 from frame 0, then a tail window ending at frame 29
    (the stride of 8 would need 32); every frame in the overlay, and the video read once."""
    frames = data.synthetic_clip("fight", 30, 64, seed=3).frames
    path = data.write_video(tmp_path / "thirty.mp4", frames, fps=8)
    decoded = []
    real = data.iter_frames
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(data, "iter_frames", lambda p: decoded.append(p) or real(p))
        summary = video.explain_video(path, tmp_path / "out", method="saliency", progress=False)
    assert len(decoded) == 1  # one decode: the frame count comes from the stream, not a first pass
    assert [(w["first_frame"], w["last_frame"], w["tail"]) for w in summary["windows"]] == [(0, 23, False),
                                                                                          (6, 29, True)]
    assert summary["windows"][1]["frames_seen"] == [6, 9, 13, 16, 19, 22, 26, 29]
    assert summary["video"]["frames"] == summary["overlay_frames"] == 30 and summary["complete"]
    assert summary["video"]["duration_seconds"] == 3.75 and summary["layer"] is None  # saliency: no layer
    assert _frames_and_size(tmp_path / "out" / "overlay.mp4") == (30, (64, 64, 3))
    # the count the progress bar is given, from the container's frame count: the windows cut
    assert [video.window_count(n, 24, 8) for n in (5, 24, 30, 32, 40)] == [1, 1, 2, 2, 3]
    assert video.window_count(30, 0, 8) == 1


def test_the_heat_is_drawn_inside_the_picture_not_on_the_padding():
    """A 4:3 frame is padded to the model's square with bars above and below; a map whose peak
    lies on a bar is cropped to the picture and scaled to its peak there."""
    heat = np.zeros((64, 64), np.float32)
    heat[2, 30] = 1.0  # on the top bar: rows 0-7 of 64 for a 48-row picture
    heat[30, 10] = 0.5
    inside = video.inside_picture(heat, 96, 128, 64)
    assert inside.shape == (48, 64) and inside.max() == 1.0 and inside[30 - 8, 10] == 1.0


def test_a_video_shorter_than_a_window(tmp_path, capsys):
    short = data.write_video(tmp_path / "short.mp4", data.synthetic_clip("fight", 5, 64).frames)
    assert cli.main(["explain", str(short), "--out", str(tmp_path / "a"), "--quiet",
                     "--short", "error"]) == 2
    assert "short.mp4 has 5 frames, fewer than one window of 24" in capsys.readouterr().err
    assert not list((tmp_path / "a").glob("*"))  # refused before a file is written
    assert cli.main(["explain", str(short), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["padded"] is True and summary["windows"][0]["frames_seen"][-1] == 4


@pytest.mark.parametrize("arguments,message", [
    (["explain", "missing.mp4"], "video not found: missing.mp4"),
    (["explain", FIGHT, "--layer", "block9_conv9"], "unknown layer 'block9_conv9'.*block1_conv1"),
    (["explain", FIGHT, "--target", "riot"], "unknown class 'riot'"),
    (["explain", FIGHT, "--model", "nowhere.keras"], "model file not found"),
])
def test_bad_input_gives_one_clear_line(tmp_path, capsys, arguments, message):
    assert cli.main(arguments + ["--out", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_not_a_video_and_unwritable_output(tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    assert cli.main(["explain", str(text), "--quiet", "--out", str(tmp_path / "o")]) == 2
    assert re.search("notes.mp4 (is not a readable video|has no decodable frame)",
                     capsys.readouterr().err)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli.main(["explain", FIGHT, "--quiet", "--out", str(blocker / "out")]) == 2
    assert "cannot write into the output folder" in capsys.readouterr().err


def test_unknown_method_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["explain", FIGHT, "--method", "magic"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_interrupted_run_keeps_the_windows_done(tmp_path, monkeypatch, capsys):
    calls = {"n": 0}
    real = video.frame_importance

    def interrupt_on_the_second_window(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(video, "frame_importance", interrupt_on_the_second_window)
    out = tmp_path / "partial"
    assert cli.main(["explain", FIGHT, "--out", str(out), "--quiet", "--window", "8"]) == 130
    assert "interrupted" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] is False and summary["interrupted"] is True
    assert len(summary["windows"]) == 1
    assert _frames_and_size(out / "overlay.mp4")[0] == 8


def test_help_lists_every_option_with_its_default():
    done = subprocess.run([sys.executable, "-m", "tdexplain.interfaces.cli", "explain", "--help"],
                          capture_output=True, text=True, check=True)
    for option in ("--model", "--method", "--layer", "--window", "--stride", "--target", "--out"):
        assert option in done.stdout
    assert re.search(r"--window WINDOW .*default: 3 s of video", " ".join(done.stdout.split()))
    assert re.search(rf"--method METHOD .*\(default: {DEFAULT_METHOD}\)", " ".join(done.stdout.split()))
    top = subprocess.run([sys.executable, "-m", "tdexplain.interfaces.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert all(command in top for command in ("explain", "batch", "train", "sweep", "report"))


def test_demo_model_is_the_default():
    assert models.DEMO_MODEL.endswith("tdexplain/data_samples/demo_model.keras")  # in the package


def test_train_command_on_synthetic_clips_and_on_a_folder(tmp_path, capsys):
    tiny = ["--frames", "2", "--size", "32", "--width", "0.0625", "--gru-units", "4",
            "--dense-blocks", "1", "--frame-epochs", "1", "--head-epochs", "1", "--epochs", "1",
            "--batch-size", "4"]
    out = tmp_path / "synthetic.keras"
    assert cli.main(["train", "--out", str(out), "--clips", "12", "--dropout", "0.25", "--block-dropout", "0.1"]
                    + tiny) == 0
    assert "validation accuracy" in capsys.readouterr().out
    saved = json.loads((tmp_path / "synthetic.metrics.json").read_text())
    assert saved["config"]["build"]["gru_units"] == 4 and saved["config"]["train"]["train_clips"] == 12
    trained = load_model(out)  # the GRU's rate and the dense block's, each where it was asked
    assert (trained.get_layer("gru").dropout, trained.get_layer("dropout_1").rate) == (0.25, 0.1)
    for label in ("calm", "brawl"):
        for seed in range(3):
            clip = data.synthetic_clip("normal" if label == "calm" else "fight", 4, 32, seed=seed)
            data.write_video(tmp_path / "videos" / label / f"{seed}.mp4", clip.frames)
    folder_model = tmp_path / "folder.keras"
    assert cli.main(["train", "--out", str(folder_model), "--data", str(tmp_path / "videos")] + tiny) == 0
    assert shapes.class_names(load_model(folder_model)) == ("brawl", "calm")
    assert cli.main(["train", "--out", str(tmp_path / "x.keras"), "--data",
                     str(tmp_path / "nothing")] + tiny) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_sweep_command_runs_each_study_once_and_resumes(tmp_path, capsys):
    from tdexplain.workbook import sweep

    out = tmp_path / "study.csv"
    tiny = ["--out", str(out), "--vary", "gru_units=8,16", "--base", "dense_blocks=2", "--train-clips", "30",
            "--evaluation-clips", "2", "--head-epochs", "1", "--quiet"]
    assert cli.main(["sweep"] + tiny) == 0
    assert "2 runs in" in capsys.readouterr().out
    results = sweep.load_results(out)
    expected = sweep.one_at_a_time(dict(cli.STUDY_BASE, dense_blocks=2), gru_units=[8, 16])
    assert list(results["config_id"]) == [sweep._config_id(config, 0) for config in expected]
    assert (results["status"] == "ok").all() and len(list((tmp_path / "study_maps").iterdir())) == 2
    assert cli.main(["sweep"] + tiny + ["--seeds", "0", "1", "--vary", "dropout=0.25"]) == 0  # 4 runs more
    results = sweep.load_results(out)
    assert len(results) == 6 and results["config_id"].is_unique
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--out", str(out), "--vary", "colour=1,2"])
    assert "unknown hyperparameter 'colour'; a sweep varies gru_units, dropout" in capsys.readouterr().err


def test_the_demo_model_warns_on_footage_it_never_learnt_and_only_there(tmp_path, capsys):
    """A real-looking video outside the samples, explained by the demo model, gets the note in
    the printed verdict and in summary.json; the same file with a model passed by --model does
    not (the user chose the model)."""
    import shutil

    path = data.write_video(tmp_path / "street.mp4", np.random.default_rng(0).integers(
        0, 255, (8, 96, 128, 3), dtype=np.uint8), fps=8)
    assert cli.main(["explain", str(path), "--out", str(tmp_path / "a"), "--quiet", "--method", "saliency"]) == 0
    printed = capsys.readouterr().out
    assert "note: the demo model knows only synthetic scenes" in printed and "--model" in printed
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["model"]["note"].startswith("the demo model knows only synthetic scenes")
    own = shutil.copy(models.DEMO_MODEL, tmp_path / "mine.keras")
    assert cli.main(["explain", str(path), "--out", str(tmp_path / "b"), "--quiet", "--method", "saliency",
                     "--model", str(own)]) == 0
    assert "note:" not in capsys.readouterr().out
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["model"]["note"] is None


def test_the_console_shows_no_backend_log_line(tmp_path):
    """TensorFlow writes its start-up lines ("failed call to cuInit", oneDNN, CPU features)
    whatever TF_CPP_MIN_LOG_LEVEL says; tdexplain drops them as the backend loads."""
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-m", "tdexplain.interfaces.cli", "explain", str(FIGHT),
                           "--out", str(tmp_path)], capture_output=True, text=True, env=environment)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "verdict: fight" in done.stdout
    logged = [line for line in done.stderr.splitlines() if tdexplain.BACKEND_LOG_LINE.match(line)]
    assert logged == [] and "absl" not in done.stderr and "cuInit" not in done.stderr


def test_a_method_s_options_reach_it_and_a_wrong_one_is_named(tmp_path, capsys):
    out = tmp_path / "scorecam"
    assert cli.main(["explain", FIGHT, "--out", str(out), "--quiet", "--method", "scorecam",
                     "--option", "scorecam_channels=2"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["method"] == "scorecam" and summary["options"] == {"scorecam_channels": 2}
    assert cli.main(["explain", FIGHT, "--out", str(tmp_path / "x"), "--option", "scorecam_channel=2"]) == 2
    assert "unknown option(s) scorecam_channel; the methods' options are:" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written
    with pytest.raises(SystemExit):
        cli.main(["explain", FIGHT, "--option", "scorecam_channels"])
    assert "expected NAME=VALUE, got 'scorecam_channels'" in capsys.readouterr().err
    # the value reaches the method, which checks it; another method's option is refused
    assert cli.main(["explain", FIGHT, "--out", str(tmp_path / "y"), "--quiet", "--method", "scorecam",
                     "--option", "scorecam_channels=0"]) == 2
    assert "scorecam_channels must be None (every channel) or an integer >= 1, got 0" in capsys.readouterr().err
    assert cli.main(["explain", FIGHT, "--out", str(tmp_path / "z"), "--method", "gradcam",
                     "--option", "scorecam_channels=2"]) == 2
    assert "gradcam takes no option scorecam_channels; its options: none" in capsys.readouterr().err


def test_a_model_with_two_inputs_and_two_outputs_is_explained_from_the_command_line(tmp_path, capsys,
                                                                                    two_io_model):
    """The output to explain is chosen by name and the other input held from a .npy file; without
    it, the error names the input that needs a value."""
    model_path, meta_path = two_io_model
    out = tmp_path / "explained"
    assert cli.main(["explain", FIGHT, "--model", str(model_path), "--out", str(out), "--quiet",
                     "--method", "saliency", "--output", "action", "--other-input", f"meta={meta_path}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"]["classes"] == ["calm", "fight"] and summary["complete"] is True
    assert (summary["model"]["output"], summary["model"]["clip_input"]) == ("action", "clip")
    assert summary["model"]["other_inputs"]["meta"]["shape"] == [5]
    assert cli.main(["explain", FIGHT, "--model", str(model_path), "--out", str(tmp_path / "x"),
                     "--output", "action"]) == 2
    assert "meta" in capsys.readouterr().err
    np.savez(tmp_path / "meta.npz", meta=np.load(meta_path))  # the app's rule: one .npy array, named
    with pytest.raises(SystemExit):
        cli.main(["explain", FIGHT, "--model", str(model_path), "--other-input", f"meta={tmp_path / 'meta.npz'}"])
    assert "for the input 'meta' is an .npz archive; give a .npy file" in capsys.readouterr().err
