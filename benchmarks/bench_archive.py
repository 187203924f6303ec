"""`tdexplain batch` on long footage: peak memory against the video's length (it must not grow),
and frames per second predicting every window, explaining the flagged ones, and explaining all.

Each run is a fresh process (`tdexplain batch`), so its peak RSS is its own. The videos are made
from the synthetic scenes (a few scenes repeated), upscaled and padded to 640x360 at 25 fps, and
written to a temporary folder (never to git). Run: python benchmarks/bench_archive.py [minutes ...]
(default 1 and 10; 60 takes about half an hour to write and read on 2 cores). Prints a table
and writes benchmarks/results/archive.json.
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tdexplain.interfaces import batch  # noqa: E402
from tdexplain.workbook import data  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FPS, WIDTH, HEIGHT = 25, 640, 360
SCENES = ("normal", "fight", "normal", "shooting")  # each 64 frames, repeated to the length asked

MEASURE = """
import resource, sys, time
from tdexplain.interfaces import cli
start = time.perf_counter()
code = cli.main(sys.argv[1:])
print("SECONDS", time.perf_counter() - start, "PEAK_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
sys.exit(code)
"""


def write_footage(path: Path, minutes: float) -> int:
    scenes = []
    for i, label in enumerate(SCENES):
        clip = data.synthetic_clip(label, frames=64, size=96, seed=900 + i).frames
        frame = np.zeros((len(clip), HEIGHT, WIDTH, 3), np.uint8)
        left = (WIDTH - HEIGHT) // 2
        frame[:, :, left:left + HEIGHT] = [data.fit_frame(f, (HEIGHT, HEIGHT), "stretch") for f in clip]
        scenes.append(frame)
    total = int(minutes * 60 * FPS)
    with data.VideoWriter(path, WIDTH, HEIGHT, FPS) as writer:
        for index in range(total):
            scene = scenes[(index // 64) % len(scenes)]
            writer.write(scene[index % 64])
    return total


def run(archive: Path, out: Path, explain: str) -> dict:
    command = [sys.executable, "-c", MEASURE, "batch", str(archive), "--out", str(out), "--explain", explain,
               "--quiet"]
    printed = subprocess.run(command, capture_output=True, text=True, check=True).stdout.split()
    return {"seconds": float(printed[printed.index("SECONDS") + 1]),
            "peak_rss_mb": float(printed[printed.index("PEAK_MB") + 1])}


def main(lengths):
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for minutes in lengths:
            video = Path(folder) / f"{minutes:g}min" / "footage.mp4"
            frames = write_footage(video, minutes)
            for explain in ("none", "flagged", "all"):
                measured = run(video.parent, Path(folder) / f"out_{minutes:g}_{explain}", explain)
                manifest = json.loads((Path(folder) / f"out_{minutes:g}_{explain}" / "manifest.jsonl").read_text())
                rows.append({"minutes": minutes, "frames": frames, "explain": explain, **measured,
                             "frames_per_second": frames / measured["seconds"],
                             "windows": manifest["windows"], "explained": manifest["explained"]})
    for row in rows:
        row["frames_per_second_per_core"] = row["frames_per_second"] / os.cpu_count()
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
               "footage": f"{WIDTH}x{HEIGHT} at {FPS} fps, windows of 3 s every 1 s, the demo model, "
                          f"the default method with {batch.ARCHIVE_OPTIONS}",
               "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "archive.json").write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}, {results['date']}; {results['footage']}")
    print(f"{'minutes':>7s} {'explain':>8s} {'frames':>7s} {'windows':>7s} {'explained':>9s} {'seconds':>8s} "
          f"{'frames/s':>8s} {'per core':>8s} {'peak MB':>8s}")
    for row in rows:
        print(f"{row['minutes']:7g} {row['explain']:>8s} {row['frames']:7d} {row['windows']:7d} {row['explained']:9d} "
              f"{row['seconds']:8.1f} {row['frames_per_second']:8.1f} {row['frames_per_second_per_core']:8.1f} "
              f"{row['peak_rss_mb']:8.0f}")


if __name__ == "__main__":
    main([float(a) for a in sys.argv[1:]] or [1, 10])
