"""Stage 1 benchmark: images generated per second per generator, and publishing 10,000 images.

Machines here are noisy, so every figure comes with a ratio against a baseline measured in
the same process: generating against only JPEG-encoding an image of the same size (the floor
any generator pays), publishing against only copying the same files.

    .venv/bin/python bench/bench_data.py [--count 400] [--size 64] [--publish 10000]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from results import figure, save


def encode_baseline(out: Path, count: int, size: int) -> float:
    """Seconds to JPEG-encode ``count`` noise images of ``size`` px: the floor of any generator."""
    rng = np.random.default_rng(0)
    noise = [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(8)]
    t0 = time.perf_counter()
    for i in range(count):
        noise[i % 8].save(out / f"{i}.jpg", quality=90)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=400, help="images per generator")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--publish", type=int, default=10_000, help="images in the publish benchmark")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="labkit-bench-"))
    os.environ["LABKIT_HOME"] = str(tmp / "ws")
    from labkit import data

    print(f"{os.cpu_count()} CPU cores, {args.count} images per generator at {args.size}px")
    (tmp / "base").mkdir()
    base = encode_baseline(tmp / "base", args.count, args.size)
    print(f"{'baseline: JPEG encode only':<28} {args.count / base:8.0f} img/s")
    figures = [figure("encode", "JPEG-encoding noise images of the same size", args.count / base, "img/s")]
    for kind in ("flowers", "food", "crowd", "digits"):
        count = min(args.count, 1797)
        t0 = time.perf_counter()
        data.make(kind, name=f"bench-{kind}", count=count, size=args.size, seed=0)
        dt = time.perf_counter() - t0
        ratio = dt / (base * count / args.count)
        print(f"{'make ' + kind:<28} {count / dt:8.0f} img/s   {ratio:5.1f}x the encode baseline")
        figures.append(figure(f"make.{kind}", f"generating {kind} images", count / dt, "img/s", baseline_ratio=ratio))

    data.make("flowers", name="bench-publish", count=args.publish, size=32, seed=0)
    src = Path(os.environ["LABKIT_HOME"]) / "datasets" / "bench-publish" / "images"
    files = sorted(p for p in src.rglob("*.jpg"))
    t0 = time.perf_counter()
    for i, f in enumerate(files):
        shutil.copyfile(f, tmp / "base" / f"c{i}.jpg")
    copy = time.perf_counter() - t0
    t0 = time.perf_counter()
    v = data.publish("bench-publish", train_ratio=0.8, seed=0)
    pub = time.perf_counter() - t0
    print(f"publish {args.publish} images: {pub:.2f} s ({args.publish / pub:.0f} img/s), "
          f"{pub / copy:.1f}x copying the same files ({copy:.2f} s); {v['version']} checksum {v['checksum'][:12]}")
    figures += [figure("publish", f"publishing {args.publish} images", pub, "s"),
                figure("copy", f"copying the same {args.publish} files", copy, "s")]
    save("data", figures, arguments=vars(args))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
