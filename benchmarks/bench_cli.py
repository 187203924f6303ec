"""End-to-end speed of `tdexplain explain` (decode, predict, explain, frame importance,
contours, overlay encoding) on a generated video, against plain prediction of the same
windows in the same process.

Prints a table and writes benchmarks/results/cli.json. Run: make bench.
"""

import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tdexplain import DEFAULT_METHOD, explain_video, load_model  # noqa: E402
from tdexplain.workbook import data, models  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCENES = ("normal", "fight", "normal", "shooting", "normal", "fight")  # 6 x 16 frames


def main():
    with tempfile.TemporaryDirectory() as folder:
        frames = np.concatenate([data.synthetic_clip(label, 16, 128, seed=50 + i).frames
                                 for i, label in enumerate(SCENES)])
        path = data.write_video(Path(folder) / "long.mp4", frames, fps=8)
        model = load_model(models.DEMO_MODEL)
        clips = np.stack([data.fit_frame(f, (64, 64), "pad") for f in frames]).reshape(-1, 8, 64, 64, 3)
        models.predict(model, clips)  # warm-up
        start = time.perf_counter()
        models.predict(model, clips)
        predict_s = time.perf_counter() - start
        rows = {}
        for method in (DEFAULT_METHOD, "gradcam", "saliency", "layercam"):
            explain_video(path, Path(folder) / "warm", method=method, progress=False)
            start = time.perf_counter()
            summary = explain_video(path, Path(folder) / method, method=method, progress=False)
            seconds = time.perf_counter() - start
            rows[method] = dict(seconds=seconds, frames_per_second=len(frames) / seconds,
                                ratio_to_prediction=seconds / predict_s,
                                windows=len(summary["windows"]))
    results = {"machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
               "date": time.strftime("%Y-%m-%d"),
               "video": f"{len(frames)} frames, 128x128, 8 fps, {len(frames) // 8} windows of 8",
               "prediction_only_s": predict_s, "explain": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli.json").write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}, {results['date']}; video: {results['video']}")
    print(f"{'method':26s} {'seconds':>8s} {'frames/s':>9s} {'x prediction':>13s}")
    for method, row in rows.items():
        print(f"{method:26s} {row['seconds']:8.2f} {row['frames_per_second']:9.1f} "
              f"{row['ratio_to_prediction']:13.1f}")


if __name__ == "__main__":
    main()
