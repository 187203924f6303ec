"""Which decoder streams an archive's frames: OpenCV (what `data.iter_frames` uses) against
ffmpeg through a pipe (imageio-ffmpeg's `read_frames`, which the project already ships to write
videos). PyAV is not a dependency of the project and is not measured here.

One generated 640x360, 25 fps video (bench_archive's footage), decoded whole by each, twice in
turn in the same process; frames per second and the frames counted (both must agree). Run:
python benchmarks/bench_decode.py [minutes] (default 1). Prints a table and writes
benchmarks/results/decode.json.
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from bench_archive import HEIGHT, WIDTH, write_footage
from tdexplain.workbook import data

RESULTS = Path(__file__).resolve().parent / "results" / "decode.json"


def with_opencv(path) -> int:
    return sum(1 for _ in data.iter_frames(path))


def with_ffmpeg_pipe(path) -> int:
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    shape = (*meta["size"][::-1], 3)
    return sum(1 for raw in reader if np.frombuffer(raw, np.uint8).reshape(shape) is not None)


def main(minutes: float):
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "footage.mp4"
        frames = write_footage(path, minutes)
        for _ in range(2):
            for name, decode in (("OpenCV (cv2.VideoCapture)", with_opencv),
                                 ("ffmpeg pipe (imageio-ffmpeg)", with_ffmpeg_pipe)):
                start = time.perf_counter()
                counted = decode(path)
                seconds = time.perf_counter() - start
                best = rows.get(name, {}).get("seconds", float("inf"))
                rows[name] = {"frames": counted, "seconds": min(seconds, best)}
    for row in rows.values():
        row["frames_per_second"] = row["frames"] / row["seconds"]
    results = {"machine": f"{os.cpu_count()} CPU cores", "date": time.strftime("%Y-%m-%d"),
               "footage": f"{WIDTH}x{HEIGHT}, 25 fps, {frames} frames", "decoders": rows}
    RESULTS.write_text(json.dumps(results, indent=2))
    print(f"{results['footage']}, {results['machine']}, {results['date']} (the faster of two runs each)")
    for name, row in rows.items():
        print(f"{name:30s} {row['frames']:6d} frames {row['seconds']:6.2f} s {row['frames_per_second']:8.0f} frames/s")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 1)
