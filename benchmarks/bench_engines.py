"""The Ray engines against the local ones on this machine: what Ray costs (starting a local
cluster, one model load per worker, moving rows) for `tdexplain batch` and `tdexplain sweep`.

Each command runs in a fresh process, timed from its start to its end, so the Ray runs include
starting the local cluster, as a user's first run does. The archive is `videos` one-minute
videos made as in bench_archive.py (640x360, 25 fps), written to a temporary folder. The sweep
is four configurations of the GRU study on notebook 06's data at a smaller size. Ratios are
Ray / local for the same work. Run: python benchmarks/bench_engines.py [videos]
(default 8). Prints a table and writes benchmarks/results/engines.json.
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

from bench_archive import write_footage  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SWEEP = ["--vary", "gru_units=8,16,32,64", "--train-clips", "300", "--evaluation-clips", "10",
         "--head-epochs", "20", "--quiet"]


def timed(*arguments) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tdexplain.interfaces.cli", *arguments], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(videos: int):
    cores = os.cpu_count()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        frames = sum(write_footage(folder / "archive" / f"camera{i}.mp4", 1) for i in range(videos))
        for explain in ("none", "flagged"):
            local = timed("batch", str(folder / "archive"), "--out", str(folder / f"local_{explain}"),
                          "--explain", explain, "--quiet")
            ray = timed("batch", str(folder / "archive"), "--out", str(folder / f"ray_{explain}"),
                        "--explain", explain, "--quiet", "--engine", "ray", "--workers", str(cores))
            rows.append({"work": f"batch, {videos} one-minute videos, explain {explain}",
                         "local": "1 process", "ray": f"{cores} workers", "local_seconds": local,
                         "ray_seconds": ray, "frames": frames})
        local = timed("sweep", "--out", str(folder / "local.csv"), "--workers", str(cores), *SWEEP)
        ray = timed("sweep", "--out", str(folder / "ray.csv"), "--engine", "ray", *SWEEP)
        rows.append({"work": "sweep, 4 configurations", "local": f"{cores} processes",
                     "ray": "Tune, 1 CPU per trial", "local_seconds": local, "ray_seconds": ray})
    for row in rows:
        row["ray_over_local"] = row["ray_seconds"] / row["local_seconds"]
    results = {"machine": f"{platform.machine()}, {cores} CPU cores", "date": time.strftime("%Y-%m-%d"),
               "runs": rows}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "engines.json").write_text(json.dumps(results, indent=2))
    print(f"machine: {results['machine']}, {results['date']}")
    print(f"{'work':45s} {'local':>12s} {'s':>7s} {'ray':>22s} {'s':>7s} {'ray/local':>9s}")
    for row in rows:
        print(f"{row['work']:45s} {row['local']:>12s} {row['local_seconds']:7.1f} {row['ray']:>22s} "
              f"{row['ray_seconds']:7.1f} {row['ray_over_local']:9.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)
