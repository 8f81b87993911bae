"""Stage 5 benchmark: what the HTTP service costs over calling ONNX Runtime in-process.

Imports (or trains, exports and imports) a ResNet-50 flowers model at 64 px, then, in one run:

1. in-process ONNX Runtime: batch-1 median latency; the best batch size, and its throughput
   sustained over as many images as a 16-client round sends;
2. the service (its own process, 127.0.0.1) called over the V2 binary route (tritonclient's
   default encoding): one client's median latency, and the throughput of 16 concurrent clients
   each sending batch-1 requests (a lean socket client in a separate process), with the
   service's CPU time per request (its event loop, and the threads running the model).

Prints the ratios. The bars: 16 clients reach >= 80% of in-process best-batch throughput; one
client's median overhead is under 5 ms.

    .venv/bin/python bench/bench_serve.py [--home DIR] [--model fp32|int8] [--rounds 3] [--instances 1]
                                          [--max-batch 16]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from results import figure, save

# The load generator: threads over raw keep-alive sockets, each sending one pre-encoded request.
# Not httpx: measured here, an async httpx client spent 3.4 ms of CPU per request (0.45 of the
# 2 cores at 16 clients), which the throughput bar would have charged to the service.
CLIENT = r"""
import json, socket, sys, threading, time
import numpy as np
url, name, clients, total = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
shape, dtype = json.loads(sys.argv[5]), sys.argv[6]
host, port = url.split("//")[1].rstrip("/").split(":")
x = np.random.default_rng(0).integers(0, 256, shape).astype(dtype)
head = json.dumps({"inputs": [{"name": "images", "shape": shape, "datatype": "UINT8" if dtype == "uint8" else "FP32",
                                "parameters": {"binary_data_size": x.nbytes}}],
                   "outputs": [{"name": "logits", "parameters": {"binary_data": True}}]}).encode()
body = head + x.tobytes()
request = (f"POST /v2/models/{name}/infer HTTP/1.1\r\nHost: {host}\r\nInference-Header-Content-Length: {len(head)}\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
latencies, errors = [], []

def call(sock, buf):
    sock.sendall(request)
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    header, _, rest = buf.partition(b"\r\n\r\n")
    length = int(header.lower().split(b"\r\ncontent-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        rest += sock.recv(65536)
    return header.startswith(b"HTTP/1.1 200"), rest[length:]

def worker(n):
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = b""
        for _ in range(n):
            t = time.perf_counter()
            ok, buf = call(sock, buf)
            latencies.append(time.perf_counter() - t)
            errors.extend([] if ok else [1])

def run(n_clients, n):
    threads = [threading.Thread(target=worker, args=(n // n_clients,)) for _ in range(n_clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start

run(1, 20)  # warm-up
latencies.clear()
cpu = time.process_time()
wall = run(clients, total)
print(json.dumps({"wall": wall, "requests": len(latencies), "errors": len(errors), "client_cpu": time.process_time() - cpu,
                  "median": sorted(latencies)[len(latencies) // 2]}))
"""


def model_ref(which: str) -> str:
    from labkit import convert, data, registry, train

    name = f"bench-serve-{which}"
    if any(r["model"] == name and r["state"] == "NORMAL" for r in registry.list_models()):
        return name
    dataset = data.ensure_version("flowers", profile="workshop", log=print)
    if not any(r["job"] == "bench-serve" and r["state"] == "COMPLETED" for r in train.list_jobs()):
        train.create("ResNet_v1_50", "pytorch", dataset, "bench-serve", {"learning_rate_strategy": "2:0.01"},
                     profile="workshop", wait=True, log=print)
    if which == "int8":
        convert.create("bench-serve", "onnx-ort-int8", "bench-serve-int8", profile="quick", log=print)
        registry.import_model(name, from_conversion="bench-serve-int8", log=print)
    else:
        registry.import_model(name, from_job="bench-serve", log=print)
    return name


def in_process(model, images: int, rounds: int = 5) -> dict:
    """Batch-1 median latency (s); the best batch size by short bursts; and that batch's
    sustained throughput over ``images`` images, the same work as a 16-client round (a burst's
    best of ``rounds`` catches this machine at its fastest moment, a sustained run does not)."""
    one = np.zeros((1, *model.sample_shape), model.dtype)
    for _ in range(5):
        model.run(one)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        model.run(one)
        times.append(time.perf_counter() - t)
    burst, best_batch = 0.0, 1
    for batch in (1, 4, 8, 16, 32):
        x = np.zeros((batch, *model.sample_shape), model.dtype)
        model.run(x)
        t = min(_timed(model.run, x) for _ in range(rounds))
        if batch / t > burst:
            burst, best_batch = batch / t, batch
    x = np.zeros((best_batch, *model.sample_shape), model.dtype)
    runs = -(-images // best_batch)
    sustained = runs * best_batch / _timed(lambda x: [model.run(x) for _ in range(runs)], x)
    return {"latency": statistics.median(times), "burst": burst, "best_batch": best_batch, "sustained": sustained}


def _timed(fn, x) -> float:
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def clients(url: str, name: str, n: int, total: int, shape: list, dtype: str, pid: int | None = None) -> dict:
    """Run the load client; with ``pid``, also the service's CPU seconds over the run: its main
    thread (the event loop) and its other threads (ONNX Runtime's and the executor's)."""
    before = _thread_cpu(pid) if pid else {}
    out = subprocess.run([sys.executable, "-c", CLIENT, url, name, str(n), str(total), json.dumps(shape), dtype],
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if pid:
        after = _thread_cpu(pid)
        spent = {tid: t - before.get(tid, 0.0) for tid, t in after.items()}
        result["loop_cpu"] = spent.get(pid, 0.0)
        result["other_cpu"] = sum(spent.values()) - result["loop_cpu"]
    return result


def _thread_cpu(pid: int) -> dict[int, float]:
    import psutil

    return {t.id: t.user_time + t.system_time for t in psutil.Process(pid).threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--home", help="a workspace to keep the model in (default: a new temporary one)")
    p.add_argument("--model", choices=("fp32", "int8"), default="fp32")
    p.add_argument("--requests", type=int, default=1000, help="per round, from the 16 clients")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--instances", type=int, default=1)
    p.add_argument("--max-batch", type=int, default=16, help="the largest batch the service's micro-batcher runs")
    args = p.parse_args()
    os.environ["LABKIT_HOME"] = args.home or tempfile.mkdtemp(prefix="labkit-bench-serve-")
    from labkit import registry
    from labkit.serve import services
    from labkit.serve.runtime import Model

    name = model_ref(args.model)
    folder, serving = registry.deployable(name)
    local = Model(folder)
    service = services.deploy(name, instances=args.instances, max_batch=args.max_batch, log=lambda *_: None)
    shape, dtype = [1, *local.sample_shape], np.dtype(local.dtype).name
    rows = []
    try:
        for _ in range(args.rounds):  # interleaved: these machines' speed drifts within minutes
            local_run = in_process(local, args.requests)
            single = clients(service["url"], name, 1, 200, shape, dtype)
            many = clients(service["url"], name, 16, args.requests, shape, dtype,
                           service["pid"] if args.instances == 1 else None)
            throughput = many["requests"] / many["wall"]
            rows.append({**local_run, "single": single["median"], "throughput": throughput,
                         "ratio": throughput / local_run["sustained"], "client_cpu": many["client_cpu"] / many["wall"],
                         "loop_ms": 1000 * many.get("loop_cpu", float("nan")) / many["requests"],
                         "other_ms": 1000 * many.get("other_cpu", float("nan")) / many["requests"],
                         "errors": many["errors"] + single["errors"]})
    finally:
        services.stop(service["service"])
    print(f"model {name} ({serving['input']['datatype']} input {shape}), {os.cpu_count()} cores, "
          f"{args.instances} instance(s), max batch {args.max_batch}; {args.rounds} interleaved rounds")
    print(f"{'round':>5} {'in-process b1':>13} {'best batch: burst':>18} {'sustained':>10} {'service b1':>10} "
          f"{'overhead':>8} {'16 clients':>11} {'ratio':>5} {'client CPU':>10}  service CPU/request: loop + others")
    for i, r in enumerate(rows, 1):
        print(f"{i:>5} {r['latency'] * 1000:>10.2f} ms {r['burst']:>8.0f} img/s (b{r['best_batch']:<2}) "
              f"{r['sustained']:>4.0f} img/s {r['single'] * 1000:>7.2f} ms {(r['single'] - r['latency']) * 1000:>5.2f} ms "
              f"{r['throughput']:>5.0f} img/s {r['ratio']:>5.0%} {r['client_cpu']:>5.2f} core  "
              f"{r['loop_ms']:.2f} ms + {r['other_ms']:.2f} ms")
    overhead = statistics.median((r["single"] - r["latency"]) * 1000 for r in rows)
    ratio = statistics.median(r["ratio"] for r in rows)
    burst_ratio = statistics.median(r["throughput"] / r["burst"] for r in rows)
    print(f"median: one client's overhead {overhead:.2f} ms (bar < 5 ms); 16 clients reach {ratio:.0%} of in-process "
          f"best-batch throughput, sustained (bar >= 80%), {burst_ratio:.0%} of its best burst; "
          f"{sum(r['errors'] for r in rows)} errors")
    save("serve", [figure("serve.overhead", "one client's median overhead over in-process ONNX Runtime, batch 1",
                          overhead / 1000, "s", model=args.model),
                   figure("serve.ratio", "16 clients' throughput over in-process best-batch throughput", ratio, "fraction",
                          model=args.model, rounds=rows)],
         profile="workshop", arguments={k: v for k, v in vars(args).items() if k != "home"})


if __name__ == "__main__":
    main()
