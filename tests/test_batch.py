"""`tdexplain batch`: an archive explained window by window in one decode per file, each window's
probabilities equal to the model's on the same frames, failures kept apart, and a killed run
resumed without losing or repeating a video."""

import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from tdexplain import load_model
from tdexplain.interfaces import batch, cli, video
from tdexplain.workbook import data, models

LENGTHS = {"fight": 30, "normal": 20, "shooting": 5}  # frames; the shooting is shorter than a window
SETTINGS = batch.BatchSettings(window=8, stride=8, batch_windows=3, options={"ig_steps": 4})


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    folder = tmp_path_factory.mktemp("archive")
    for label, length in LENGTHS.items():
        frames = data.synthetic_clip(label, frames=length, size=96, seed=7).frames
        wide = np.zeros((length, 96, 128, 3), np.uint8)  # 4:3 footage: the model sees it padded
        wide[:, :, 16:112] = frames
        data.write_video(folder / "camera" / f"{label}.mp4", wide, fps=8)
    (folder / "camera" / "broken.mp4").write_bytes(b"not a video" * 100)
    return folder


@pytest.fixture(scope="module")
def run(archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return out, batch.run_batch(archive, out, SETTINGS, progress=False)


def test_every_window_is_predicted_as_the_model_predicts_its_frames(archive, run):
    out, rows = run
    model = load_model(models.DEMO_MODEL)
    done = [row for row in rows if row["status"] == "done"]
    assert sorted(os.path.basename(row["video"]) for row in done) == ["fight.mp4", "normal.mp4", "shooting.mp4"]
    for row in done:
        summary = json.loads((out / "videos" / row["id"] / "summary.json").read_text())
        frames = list(data.iter_frames(row["video"]))  # an independent decode
        clips = np.stack([[data.fit_frame(frames[i], (64, 64), "pad") for i in w["frames_seen"]]
                          for w in summary["windows"]]).astype("float32")
        expected = models.predict(model, clips)
        got = np.array([[w["probabilities"][name] for name in ("normal", "fight", "shooting")]
                        for w in summary["windows"]])
        np.testing.assert_allclose(got, expected, atol=1e-5)
        assert summary["video"]["frames"] == row["frames"] == len(frames)
        for w, p in zip(summary["windows"], expected):
            flagged = [name for name, k in (("fight", 1), ("shooting", 2)) if p[k] >= 0.5]
            assert w["flagged"] == flagged and (w["explained"] is not None) == bool(flagged)


def test_the_windows_cover_the_video_to_its_last_frame(run):
    out, rows = run
    spans = {os.path.basename(row["video"]): [(w["first_frame"], w["last_frame"], w["tail"]) for w in
                                              json.loads((out / "videos" / row["id"] / "summary.json").read_text())["windows"]]
             for row in rows if row["status"] == "done"}
    assert spans["fight.mp4"] == [(0, 7, False), (8, 15, False), (16, 23, False), (22, 29, True)]
    assert spans["normal.mp4"] == [(0, 7, False), (8, 15, False), (12, 19, True)]
    assert spans["shooting.mp4"] == [(0, 4, True)]  # one window, padded with the last frame


def test_explained_windows_say_what_and_where_in_video_pixels(run):
    out, rows = run
    explained = [w["explained"] for row in rows if row["status"] == "done"
                 for w in json.loads((out / "videos" / row["id"] / "summary.json").read_text())["windows"]
                 if w["explained"]]
    assert explained
    for entry in explained:
        assert len(entry["frame_importance"]) == len(entry["frames"]) == 8
        # Contours are traced inside the padding (96 of the 128 columns at 64 px: 48 model pixels) and
        # given in video pixels: no centroid in the black bars' width or beyond the frame.
        assert entry["contours_traced_at"] == [48, 64]
        for frame in entry["frames"]:
            for region in frame["contours"]:
                x, y = region["centroid"]
                assert 0 <= x <= 128 and 0 <= y <= 96


def test_a_broken_video_is_a_failed_row_with_its_reason_and_the_others_complete(run):
    out, rows = run
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1 and "broken.mp4" in failed[0]["reason"]
    table = (out / "windows.csv").read_text().splitlines()
    assert len(table) == 1 + sum(row["windows"] for row in rows if row["status"] == "done")
    page = (out / "index.html").read_text()
    assert "3 of 4 videos explained" in page and "broken.mp4" in page and "not a readable video" in page


RESUMED = ["--explain", "all", "--window", "8", "--stride", "4", "--option", "ig_steps=8", "--quiet"]


def _killed_run(archive, out, engine: str, lines: int) -> dict:
    """`tdexplain batch` in a process group of its own (the driver and any local Ray cluster it
    starts), killed with SIGKILL once `lines` videos are in the manifest: {video id: the mtime of
    its summary} for the videos done before the kill."""
    command = [sys.executable, "-m", "tdexplain.interfaces.cli", "batch", str(archive), "--out", str(out),
               "--engine", engine] + RESUMED
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    manifest = out / "manifest.jsonl"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None and not (
            manifest.exists() and manifest.read_text().count("\n") >= lines):
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    before = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert lines <= len(before) < 4, "the kill came after the run had finished: nothing to resume"
    return {row["id"]: (out / "videos" / row["id"] / "summary.json").stat().st_mtime_ns
            for row in before if row["status"] == "done"}


def _check_resumed(archive, out, kept: dict) -> None:
    """Each video once in the manifest, the ones done before the kill not redone, no partial folder."""
    after = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(row["video"] for row in after) == sorted(str(p) for p in batch.find_videos(archive))
    assert all((out / "videos" / video_id / "summary.json").stat().st_mtime_ns == mtime
               for video_id, mtime in kept.items())
    assert not list((out / "videos").glob("*.partial"))


def test_a_killed_run_resumes_with_nothing_lost_or_repeated(archive, tmp_path):
    """SIGKILL once two videos are in the manifest; a second run finishes the others only."""
    out = tmp_path / "out"
    kept = _killed_run(archive, out, "local", lines=2)
    assert cli.main(["batch", str(archive), "--out", str(out)] + RESUMED) == 1  # the broken video
    _check_resumed(archive, out, kept)


@pytest.mark.parametrize("archive_arg, settings, message", [
    ("missing_folder", {}, "archive not found"),
    ("empty", {}, "no video in"),
    ("camera", {"thresholds": {"fire": 0.5}}, "unknown classes ['fire']; the model's classes: normal, fight, shooting"),
    ("camera", {"explain": "some"}, "explain must be one of"),
    ("camera", {"thresholds": {"fight": 1.5}}, "a threshold is a probability in (0, 1]; got {'fight': 1.5}"),
    ("camera", {"method": "magic"}, "magic"),
])
def test_bad_input_gets_a_clear_error(archive, tmp_path, archive_arg, settings, message):
    (archive / "empty").mkdir(exist_ok=True)
    with pytest.raises((ValueError, FileNotFoundError)) as error:
        batch.run_batch(archive / archive_arg, tmp_path / "out", batch.BatchSettings(**settings), progress=False)
    assert message in str(error.value)


def test_an_archive_is_a_folder_a_glob_or_a_list_file(archive, tmp_path):
    names = ["broken.mp4", "fight.mp4", "normal.mp4", "shooting.mp4"]
    assert [p.name for p in batch.find_videos(archive)] == names
    assert [p.name for p in batch.find_videos(f"{archive}/cam*")] == names  # a glob of folders
    listing = tmp_path / "cameras.txt"
    listing.write_text(f"# two cameras\n{archive}/camera/fight.mp4\n\nmissing/gone.mp4\n")
    listed = batch.find_videos(listing)
    assert [p.name for p in listed] == ["fight.mp4", "gone.mp4"] and listed[1].parent == tmp_path / "missing"
    rows = batch.run_batch(listing, tmp_path / "out", batch.BatchSettings(explain="none"), progress=False)
    assert [row["status"] for row in rows] == ["done", "failed"] and "video not found" in rows[1]["reason"]


def test_a_manifest_line_cut_by_a_kill_is_run_again(archive, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    whole = json.dumps({"video": str(archive / "camera" / "broken.mp4"), "id": "x", "status": "failed", "reason": "r"})
    (out / "manifest.jsonl").write_text(whole + "\n" + '{"video": "' + str(archive / "camera" / "fight.mp4"))
    rows = batch.run_batch(archive, out, batch.BatchSettings(explain="none"), progress=False)
    assert sorted(os.path.basename(row["video"]) for row in rows) == ["broken.mp4", "fight.mp4", "normal.mp4",
                                                                      "shooting.mp4"]
    assert rows[0]["reason"] == "r"  # kept, not run again


# The Ray engine, on a local Ray cluster of 2 CPUs (conftest's local_ray).

def _summaries(out, rows) -> dict:
    return {os.path.basename(row["video"]): json.loads((out / "videos" / row["id"] / "summary.json").read_text())
            for row in rows if row["status"] == "done"}


def test_a_killed_ray_run_resumes_with_nothing_lost_or_repeated(archive, local_ray, tmp_path):
    """The driver and the local cluster it started are killed once a video is in the manifest; the
    run started again, on Ray, finishes the others only."""
    out = tmp_path / "out"
    kept = _killed_run(archive, out, "ray", lines=1)
    local_ray.start()
    batch.run_batch(archive, out, batch.BatchSettings(explain="all", window=8, stride=4, options={"ig_steps": 8}),
                    progress=False, engine="ray")
    _check_resumed(archive, out, kept)


def test_the_ray_engine_gives_the_local_engine_s_numbers(archive, run, local_ray, tmp_path):
    local_ray.start()
    rows = batch.run_batch(archive, tmp_path / "out", SETTINGS, progress=False, engine="ray", workers=2)
    _check_same_numbers(tmp_path / "out", rows, *run)


def _check_same_numbers(out, rows, local_out, local_rows):
    """The same videos done and failed as the local engine's, each window flagged alike, with
    probabilities within 1e-5."""
    assert sorted((row["video"], row["status"]) for row in rows) == sorted((row["video"], row["status"])
                                                                           for row in local_rows)  # in finishing order
    on_ray, local = _summaries(out, rows), _summaries(local_out, local_rows)
    for name, summary in local.items():
        for ours, theirs in zip(on_ray[name]["windows"], summary["windows"]):
            assert ours["flagged"] == theirs["flagged"] and ours["frames_seen"] == theirs["frames_seen"]
            for label, p in theirs["probabilities"].items():
                assert abs(ours["probabilities"][label] - p) <= 1e-5


@pytest.fixture()
def two_machines(local_ray):
    """A Ray cluster of two machines of 1 CPU each (two raylets on this one), the first with
    two fake GPUs: Ray schedules by the resources a node declares."""
    from ray.cluster_utils import Cluster

    local_ray.ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 2})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    local_ray.ray.init(address=cluster.address, log_to_driver=False)
    yield cluster
    local_ray.ray.shutdown()
    cluster.shutdown()


def test_tasks_are_counted_by_what_fits_on_each_machine(two_machines):
    import ray

    from tdexplain.extras import task_slots

    assert task_slots(ray, 1) == 2  # one per machine
    assert task_slots(ray, 0.5) == 4
    assert task_slots(ray, 1, 1) == 1  # only the first machine has GPUs, and 1 CPU
    assert task_slots(ray, 0.5, 1) == 2  # two halves of its CPU, a GPU each
    assert task_slots(ray, 0.25, 0.5) == 4  # its 2 GPUs by halves
    for cpus, gpus in ((2, 0), (1, 3)):  # more than one machine has: Ray would wait forever
        with pytest.raises(ValueError, match=f"no machine of the Ray cluster can hold a task of {cpus} CPU and "
                                             f"{gpus} GPU; its machines have: .*1 CPU and 2 GPU"):
            task_slots(ray, cpus, gpus)


def test_on_two_machines_every_output_lands_in_out(archive, run, two_machines, tmp_path, monkeypatch):
    """Actors on both machines (1 CPU each); the results are the local engine's, and nothing is
    written but into `out`: not into the working folder, not beside the videos."""
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(archive) for p in archive.rglob("*"))
    out = tmp_path / "out"
    rows = batch.run_batch(archive, out, SETTINGS, progress=False, engine="ray", address=two_machines.address)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.relative_to(archive) for p in archive.rglob("*")) == before
    _check_same_numbers(out, rows, *run)


def test_a_worker_killed_midway_is_restarted_and_its_video_done(archive, run, local_ray, tmp_path):
    """SIGKILL to the Ray Data actor (its process) while it works; Ray Data starts another and
    retries its video: every video once in the manifest, with the local engine's numbers."""
    import threading

    import psutil

    local_ray.start()
    out, rows = tmp_path / "out", []
    driver = threading.Thread(target=lambda: rows.extend(
        batch.run_batch(archive, out, SETTINGS, progress=False, engine="ray", workers=1)))
    driver.start()
    killed = None
    deadline = time.time() + 120
    while killed is None and driver.is_alive() and time.time() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            if any("_RayWorker" in part for part in process.info["cmdline"] or ()):
                process.kill()
                killed = process.pid
        time.sleep(0.05)
    driver.join(300)
    assert killed, "the worker finished before it could be killed"
    manifest = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(row["video"] for row in manifest) == sorted(str(p) for p in batch.find_videos(archive))
    _check_same_numbers(out, rows, *run)


def test_overlays_show_each_explained_window_at_most_overlay_width_wide(archive, tmp_path, monkeypatch):
    """--overlays: a clip per explained window, of the frames the model saw, playing as long as
    the window lasts, at the video's size (128x96 here, under OVERLAY_WIDTH) with the heat inside
    the picture; a wider video is scaled down to OVERLAY_WIDTH."""
    settings = batch.BatchSettings(window=8, stride=8, explain="all", overlays=True, method="gradcam")
    captions = []
    draw_text = batch.contours.draw_text
    monkeypatch.setattr(batch.contours, "draw_text", lambda image, text, *a: captions.append(text) or
                        draw_text(image, text, *a))
    rows = batch.run_batch(archive / "camera" / "fight.mp4", tmp_path / "out", settings, progress=False)
    summary = json.loads((tmp_path / "out" / "videos" / rows[0]["id"] / "summary.json").read_text())
    # each frame says what its heat shows, and that the demo model knows only synthetic scenes
    assert set(captions) == {f"heat: Grad-CAM @ block4_conv4 for {w['explained']['class']}"
                             for w in summary["windows"]} | {video.DEMO_LINE}
    for window in summary["windows"]:
        path = tmp_path / "out" / "videos" / rows[0]["id"] / window["explained"]["overlay"]
        capture = cv2.VideoCapture(str(path))
        frames = []
        while (read := capture.read())[0]:
            frames.append(read[1])
        assert len(frames) == 8 and frames[0].shape == (96, 128, 3)
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(8 / ((window["last_frame"] - window["first_frame"] + 1) / 8),
                                                              rel=0.01)
    wide = np.zeros((1000, 1500, 3), np.uint8)
    assert video.overlay_frame(wide).shape == (round(1000 * video.OVERLAY_WIDTH / 1500), video.OVERLAY_WIDTH, 3)


def test_the_default_method_runs_with_the_archive_s_options_unless_told_otherwise():
    default = batch.BatchSettings()
    assert default.method_options() == batch.ARCHIVE_OPTIONS[default.method] == {"ig_steps": 4}
    assert batch.BatchSettings(options={"ig_steps": 64}).method_options() == {"ig_steps": 64}
    assert batch.BatchSettings(method="gradcam").method_options() == {}
