"""Load: 10,000 predict requests from 32 concurrent clients over loopback.

Deploys a model (a short-trained ResNet-50, 64 px, INT8 with pixels in, or FP32), then sends
the requests in chunks of 1,000 from a separate client process (an async httpx client with 32
connections, multipart uploads of a real image, as curl sends them), sampling the service's
memory (RSS) after each chunk. Prints errors, p50/p99 latency, throughput, and the memory
growth between the first and the last thousand requests (the bar: under 10%).

    .venv/bin/python bench/bench_load.py [--home DIR] [--requests 10000] [--clients 32] [--model int8|fp32]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import psutil

from results import figure, save

CLIENT = r"""
import asyncio, json, sys, time
import httpx
url, clients, total, image = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), open(sys.argv[4], "rb").read()
latencies, codes = [], {}
async def worker(client, n):
    for _ in range(n):
        t = time.perf_counter()
        r = await client.post("/", files={"images": ("x.jpg", image, "image/jpeg")})
        latencies.append(time.perf_counter() - t)
        codes[r.status_code] = codes.get(r.status_code, 0) + 1
async def main():
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        start = time.perf_counter()
        await asyncio.gather(*(worker(client, total // clients + (i < total % clients)) for i in range(clients)))
        return time.perf_counter() - start
wall = asyncio.run(main())
print(json.dumps({"wall": wall, "latencies": latencies, "codes": codes}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", help="a workspace holding the model (default: a new temporary one)")
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--model", choices=("int8", "fp32"), default="int8")
    args = p.parse_args()
    os.environ["LABKIT_HOME"] = args.home or tempfile.mkdtemp(prefix="labkit-bench-load-")
    sys.path.insert(0, os.path.dirname(__file__))
    from bench_serve import model_ref

    from labkit import data
    from labkit.serve import services

    name = model_ref(args.model)
    dataset = data.ensure_version("flowers", profile="workshop", log=print)
    image = data.version_dir(dataset) / data.manifest(dataset, "val")[0]["source"]
    service = services.deploy(name, name="load", log=lambda *_: None)
    server = psutil.Process(service["pid"])
    chunk = 1000
    latencies, codes, wall, rss = [], {}, 0.0, []
    try:
        for _ in range(args.requests // chunk):
            out = subprocess.run([sys.executable, "-c", CLIENT, service["url"], str(args.clients), str(chunk), str(image)],
                                 capture_output=True, text=True, check=True)
            result = json.loads(out.stdout)
            latencies += result["latencies"]
            wall += result["wall"]
            for code, n in result["codes"].items():
                codes[code] = codes.get(code, 0) + n
            rss.append(server.memory_info().rss / 2**20)
    finally:
        services.stop("load")
    ms = np.array(latencies) * 1000
    errors = sum(n for code, n in codes.items() if code != "200")
    print(f"{len(ms)} requests from {args.clients} concurrent clients ({name}, multipart uploads): {errors} errors {codes}")
    print(f"latency p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms; "
          f"throughput {len(ms) / wall:.0f} requests/s")
    print(f"service memory (RSS) after each thousand: {', '.join(f'{r:.0f}' for r in rss)} MB; "
          f"first to last thousand {100 * (rss[-1] / rss[0] - 1):+.1f}% (bar < 10%)")
    save("load", [figure("load.p50", "median latency of multipart uploads", np.percentile(ms, 50) / 1000, "s"),
                  figure("load.p99", "99th percentile latency", np.percentile(ms, 99) / 1000, "s"),
                  figure("load.throughput", "requests answered per second", len(ms) / wall, "requests/s", errors=errors),
                  figure("load.memory", "service memory growth, first to last thousand", rss[-1] / rss[0] - 1,
                         "fraction", rss_mb=rss)],
         profile="workshop", arguments={k: v for k, v in vars(args).items() if k != "home"})


if __name__ == "__main__":
    main()
