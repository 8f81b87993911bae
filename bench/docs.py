"""The docs' measured figures, generated from bench/results (`make docs`).

A marked region of a doc is rewritten from the result files:

    <!-- results: NAME -->
    ...generated text...
    <!-- /results -->

NAME is one of ``REGIONS``: a function of the results and the doc's language. Everything outside
the marks is left alone. ``--check`` changes nothing and fails when a region differs from what
the results say (tests/test_docs.py runs it).

    .venv/bin/python bench/docs.py [--check]
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

import results

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "README.zh-CN.md", "docs/WORKSHOP.md", "docs/WORKSHOP.zh-CN.md", "docs/BENCHMARKS.md",
        "docs/HUB.md", "docs/HUB.zh-CN.md")
REGION = re.compile(r"(<!-- results: ([\w-]+) -->\n)(.*?)(<!-- /results -->)", re.S)
# AMD's families as the CPU reports them (model names on these VMs say only "AMD EPYC")
AMD_CORES = {(25, range(0, 16)): "Zen 3", (25, range(16, 128)): "Zen 4", (26, range(0, 128)): "Zen 5"}


class NoResults(Exception):
    """A region asks for figures no result file holds."""


def cpu_name(info: dict, lang: str = "en") -> str:
    """A CPU as the docs name it: model (AMD's core generation), family, vector features."""
    name = info["model"]
    numbers = re.fullmatch(r"family (\d+) model (\d+)", info.get("family") or "")
    if info["vendor"] == "AuthenticAMD" and numbers:
        family, model = int(numbers[1]), int(numbers[2])
        core = next((c for (f, models), c in AMD_CORES.items() if f == family and model in models), None)
        name += f" {core}" if core else ""
    features = ("features unknown" if info.get("features") is None else ", ".join(info["features"]) or "no AVX2")
    settings = "".join(f", {k}={v}" for k, v in (info.get("settings") or {}).items())
    family = info.get("family") or "family unknown"
    if lang == "zh-CN":
        return f"{name}（{family}；{features}{settings}），{info['cores']} 核"
    return f"{name} ({family}; {features}{settings}), {info['cores']} cores"


def measured_on(run: dict, lang: str) -> str:
    """Where and when a result was measured: the CPU and the date."""
    return f"{cpu_name(run['cpu'], lang)}{'，' if lang == 'zh-CN' else ', '}{run['date']}"


def every(bench: str) -> list[dict]:
    """Every result file of ``bench``, oldest first; at least one."""
    runs = results.load(bench)
    if not runs:
        raise NoResults(f"no result file under bench/results/{bench}: run the benchmark that makes it")
    return runs


def latest(bench: str) -> dict:
    return every(bench)[-1]


def value(run: dict, key: str) -> dict:
    found = [f for f in run["figures"] if f["key"] == key]
    if not found:
        raise NoResults(f"{run['path'].name} of {run['bench']} has no figure {key!r}: run that benchmark again")
    return found[0]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f}"


def span(values: list[float]) -> str:
    """The values' range in minutes, e.g. ``1.3-2.3``."""
    low, high = minutes(min(values)), minutes(max(values))
    return low if low == high else f"{low}-{high}"


def data_table(lang: str) -> str:
    """Generating images per second per generator, and publishing, on each CPU measured."""
    rows = ["| CPU, date | JPEG encode only | flowers | food | crowd | digits | publish | copy the same files |",
            "|---|---|---|---|---|---|---|---|"]
    for run in every("data"):
        rate = {k: value(run, k) for k in ("encode", "make.flowers", "make.food", "make.crowd", "make.digits")}
        cells = [f"{rate['encode']['value']:,.0f} img/s"] + [
            f"{f['value']:,.0f} img/s ({f['baseline_ratio']:.1f}x)" for k, f in rate.items() if k != "encode"]
        rows.append(f"| {measured_on(run, lang)} | " + " | ".join(cells)
                    + f" | {value(run, 'publish')['value']:.2f} s ({run['arguments']['publish']:,} images) | "
                    f"{value(run, 'copy')['value']:.2f} s |")
    return "\n".join(rows) + "\n"


def quick_labs(lang: str) -> str:
    """Each lab in the quick profile: its time, measured against labkit's estimate."""
    run = latest("estimate-quick")
    labs = [f for f in run["figures"] if f["key"].endswith(".lab")]
    measured, estimated = [f["value"] for f in labs], [f["estimated"] for f in labs]
    where = measured_on(run, lang)
    if lang == "zh-CN":
        head = (f"`PROFILE=quick` 的 {len(labs)} 个实验各用 {span(measured)} 分钟（{where}；labkit 事先估计 "
                f"{span(estimated)} 分钟，`bench/bench_estimate.py --profiles quick`）：\n\n"
                "| 实验 | 实测 | 估计 | 实测/估计 |\n|---|---|---|---|\n")
    else:
        head = (f"In the `quick` profile the {len(labs)} labs took {span(measured)} min each ({where}; labkit estimated "
                f"{span(estimated)} min beforehand, `bench/bench_estimate.py --profiles quick`):\n\n"
                "| lab | measured | estimated | measured/estimated |\n|---|---|---|---|\n")
    unit = "分钟" if lang == "zh-CN" else "min"
    return head + "".join(f"| {f['lab']} | {minutes(f['value'])} {unit} | {minutes(f['estimated'])} {unit} | "
                          f"{f['value'] / f['estimated']:.2f} |\n" for f in labs)


def workshop_lab(lang: str) -> str:
    """The default lab in the workshop profile: its time against the estimate, and its bar."""
    run = latest("estimate-workshop")
    lab = value(run, "flowers-resnet50-pytorch.lab")
    job = jobs(run, "flowers-resnet50-pytorch")[0]
    accuracy = 100 * job["metrics"]["accuracy"]
    where = measured_on(run, lang)
    if lang == "zh-CN":
        return (f"在 {where} 上，默认实验用了 {minutes(lab['value'])} 分钟（labkit 估计 {minutes(lab['estimated'])}"
                f" 分钟），其中训练 {minutes(job['value'])} 分钟，验证准确率 {accuracy:.1f}%（达标线 80%）。\n")
    return (f"On {where}, the default lab took {minutes(lab['value'])} min (labkit estimated "
            f"{minutes(lab['estimated'])}), {minutes(job['value'])} min of it training, to {accuracy:.1f}% validation "
            "accuracy (bar 80%).\n")


def jobs(run: dict, lab: str) -> list[dict]:
    found = [f for f in run["figures"] if f["key"].startswith(f"{lab}.job.")]
    if not found:
        raise NoResults(f"{run['path'].name} of {run['bench']} has no job of {lab}: run that lab's benchmark again")
    return found


def bar(metrics: dict, lang: str) -> str:
    """A job's result as its lab's bar reads it: accuracy, or MAE against the predict-the-mean MAE."""
    if "mae" in metrics:
        ratio = metrics["mae"] / metrics["mean_baseline_mae"]
        return (f"MAE {metrics['mae']:.1f} = 预测均值 MAE 的 {ratio:.2f} 倍" if lang == "zh-CN" else
                f"MAE {metrics['mae']:.1f} = {ratio:.2f}x the predict-the-mean MAE")
    return f"{100 * metrics['accuracy']:.1f}%"


def workshop_labs(lang: str) -> str:
    """Each lab in the workshop profile: time against estimate, its jobs' results, the disk it leaves."""
    run = latest("estimate-workshop")
    labs = [f for f in run["figures"] if f["key"].endswith(".lab")]
    where = measured_on(run, lang)
    if lang == "zh-CN":
        rows = [f"workshop 配置档（{where}）：\n", "| 实验 | 实测 | 估计 | 实测/估计 | 各训练作业的结果 | 留下的工作区 |",
                "|---|---|---|---|---|---|"]
        unit = "分钟"
    else:
        rows = [f"The `workshop` profile ({where}):\n", "| lab | measured | estimated | measured/estimated | its training "
                "jobs' results | workspace left |", "|---|---|---|---|---|---|"]
        unit = "min"
    for f in labs:
        outcomes = "; ".join(bar(job["metrics"], lang) for job in jobs(run, f["lab"]))
        left = value(run, f"{f['lab']}.disk")["value"] / 1e9
        rows.append(f"| {f['lab']} | {minutes(f['value'])} {unit} | {minutes(f['estimated'])} {unit} | "
                    f"{f['value'] / f['estimated']:.2f} | {outcomes} | {left:.1f} GB |")
    return "\n".join(rows) + "\n"


def wheelhouse(lang: str) -> str:
    """What `make wheelhouse` downloads."""
    run = latest("sizes")
    found = value(run, "wheelhouse")
    gb = found["value"] / 1e9
    if lang == "zh-CN":
        return f"{run['date']} 实测：`make wheelhouse` 写出 {found['wheels']} 个 wheel（{gb:.1f} GB）。\n"
    return f"Measured {run['date']}: `make wheelhouse` wrote {found['wheels']} wheels ({gb:.1f} GB).\n"


def test_time(lang: str) -> str:
    """How long `make test-fast` and `make test` took, and how many tests each passed."""
    run = latest("tests")
    suites = [(name, f) for name in ("fast", "full") for f in run["figures"] if f["key"] == f"tests.{name}"]
    if not suites:
        raise NoResults(f"{run['path'].name} has no test suite's time: run bench/bench_tests.py")
    target = {"fast": "make test-fast", "full": "make test"}
    full = dict(suites).get("full", {})
    covered, slow = full.get("coverage"), full.get("slowest", [])[:3]
    if lang == "zh-CN":
        said = "，".join(f"`{target[name]}` 用 {minutes(f['value'])} 分钟通过 {f.get('passed', 0)} 个测试"
                        f"（跳过 {f.get('skipped', 0)} 个）" for name, f in suites)
        if covered:
            said += (f"（计时时 coverage.py 在测量，它本身也耗时；完整测试覆盖 `labkit/` 的行 {covered['lines']}%，"
                     f"分支 {covered['branches']}%）")
        if slow:
            said += "；最慢的测试：" + "，".join(f"`{t['test']}` {t['seconds']:.0f} 秒" for t in slow)
        return f"在 {measured_on(run, lang)} 上：{said}。\n"
    said = ", ".join(f"`{target[name]}` passed {f.get('passed', 0)} tests ({f.get('skipped', 0)} skipped) in "
                     f"{minutes(f['value'])} min" for name, f in suites)
    if covered:
        said += (f" (timed while coverage.py measured, which costs time of its own; the full suite covers "
                 f"{covered['lines']}% of `labkit/`'s lines and {covered['branches']}% of its branches)")
    if slow:
        said += "; the slowest tests: " + ", ".join(f"`{t['test']}` {t['seconds']:.0f} s" for t in slow)
    return f"On {measured_on(run, lang)}: {said}.\n"


def quick_span(lang: str) -> str:
    """The quick profile's lab times in one sentence."""
    run = latest("estimate-quick")
    took = span([f["value"] for f in run["figures"] if f["key"].endswith(".lab")])
    if lang == "zh-CN":
        return f"`PROFILE=quick` 让任何实验在 {took} 分钟内跑完（{measured_on(run, lang)}）。\n"
    return f"`PROFILE=quick` runs any lab in {took} min ({measured_on(run, lang)}).\n"


def venv(lang: str) -> str:
    """The installed environment's size."""
    run = latest("sizes")
    gb = value(run, "venv")["value"] / 1e9
    return f"安装后占 {gb:.1f} GB 磁盘（{run['date']} 实测）\n" if lang == "zh-CN" else \
        f"{gb:.1f} GB on disk once installed, measured {run['date']}\n"


def disk(lang: str) -> str:
    """A ResNet-50 checkpoint's size, and the workspace the default lab leaves."""
    sizes, lab = latest("sizes"), latest("estimate-workshop")
    ckpt = value(sizes, "checkpoint.resnet50")
    mb, weights = ckpt["value"] / 1e6, ckpt["baseline"] / 1e6
    left = value(lab, "flowers-resnet50-pytorch.disk")["value"] / 1e9
    if lang == "zh-CN":
        return (f"一个 ResNet-50 检查点 {mb:.0f} MB（其中权重 {weights:.0f} MB；{sizes['date']}），默认实验留下 {left:.1f} GB"
                f"（{measured_on(lab, lang)}）。\n")
    return (f"a ResNet-50 checkpoint is {mb:.0f} MB ({weights:.0f} MB of it weights; {sizes['date']}), and the default "
            f"lab left {left:.1f} GB ({measured_on(lab, lang)}).\n")


def transfer(lang: str) -> str:
    """The transfer lesson's cost by input size: a training image by what trains, an evaluation
    image, and the two-step recipe's minutes on the real photos."""
    from labkit.algorithms.configs import TRAIN_LAYERS

    run = latest("transfer")
    recipes = sorted((f for f in run["figures"] if f["key"].endswith(".recipe")), key=lambda f: (f["engine"], f["size"]))
    epochs = " + ".join(str(n) for n in recipes[0]["epochs"].values())
    if lang == "zh-CN":
        rows = [f"在 {measured_on(run, lang)} 上（`bench/bench_transfer.py`，批大小 {run['arguments']['batch']}）：\n",
                "| 引擎 | 输入尺寸 | 每张训练图片（毫秒）：全部 / 最后阶段 / 只训练分类头 | 每张验证图片（毫秒） | "
                f"workshop 的两步配方（{epochs} 个 epoch）在真实照片上（分钟） |",
                "|---|---|---|---|---|"]
    else:
        rows = [f"On {measured_on(run, lang)} (`bench/bench_transfer.py`, batch {run['arguments']['batch']}):\n",
                "| engine | input size | ms per training image: all / last / head | ms per evaluation image | "
                f"the workshop's two steps ({epochs} epochs) on the real photos (min) |", "|---|---|---|---|---|"]
    for f in recipes:
        engine, size = f["engine"], f["size"]
        train = " / ".join(f"{value(run, f'{engine}.{size}.{layers}.train_image')['value']:.1f}"
                           for layers in TRAIN_LAYERS)
        evaluation = value(run, f"{engine}.{size}.all.eval_image")["value"]
        rows.append(f"| {engine} | {size} px | {train} | {evaluation:.1f} | {f['value']:.1f} |")
    return "\n".join(rows) + "\n"


def hub(lang: str) -> str:
    """The quick food lab on the room's server: one learner alone, then three at once."""
    run = latest("hub")
    alone = value(run, "hub.alone")["value"]
    together = [(f["learner"], f["value"]) for f in run["figures"] if f["key"].startswith("hub.together.")]
    rows = "".join(f"| {who} | {cores} | {minutes(took)} | {took / alone:.1f}× |\n"
                   for (who, took), cores in zip(together, ("0", "1", "0")))
    last, one_by_one = minutes(max(took for _, took in together)), minutes(alone * len(together))
    if lang == "zh-CN":
        return (f"在 {measured_on(run, lang)} 上：一位学员单独运行（绑定 1 个核）用时 {minutes(alone)} 分钟；"
                "三位学员同时运行时，每人绑定两个核中的一个（按登录顺序轮流分配，lkt-ana 与 lkt-chen 共用 0 号核）：\n\n"
                "| 学员 | 核 | 同时运行（分钟） | 相对单独运行 |\n|---|---|---|---|\n" + rows +
                f"\n三个实验都完成了，全部在 {last} 分钟内结束（依次运行需要 {one_by_one} 分钟）。\n")
    return (f"On {measured_on(run, lang)}: one learner alone (pinned to one core) took {minutes(alone)} min; "
            "with the three at once, each pinned to one of the two cores (handed out in turn, so lkt-ana and "
            "lkt-chen share core 0):\n\n| learner | core | three at once (min) | against alone |\n|---|---|---|---|\n"
            + rows + f"\nAll three labs completed, the last after {last} min (one after another: {one_by_one} min).\n")


def speed_of_light(lang: str) -> str:
    """Each CPU's latest speed-of-light run: the GEMM rates, then each model's training step and
    evaluation batch as GFLOP/s and as a share of the FP32 GEMM rate (English: BENCHMARKS.md)."""
    rows = []
    for run in latest_per_cpu("sol"):
        gemm = {f["key"].split(".")[1]: f["value"] for f in run["figures"] if f["key"].startswith("gemm.")}
        rates = ", ".join(f"{p.upper()} {rate:.0f} GFLOP/s" for p, rate in gemm.items())
        threads = next(f["threads"] for f in run["figures"] if "threads" in f)
        rows += [f"\n{measured_on(run, lang)}, {threads} threads; best GEMM: {rates}.\n",
                 "| model (batch, px) | engine | layout | precision | train step | GFLOP/s | share | "
                 "eval batch of 64 | share | data prep / step |", "|---|---|---|---|---|---|---|---|---|---|"]
        for f in (f for f in run["figures"] if f["key"].endswith(".train")):
            engine, arch, layout, precision, _ = f["key"].split(".")
            evaluation = value(run, f["key"][:-len("train")] + "eval")
            prepare = value(run, f["key"][:-len("train")] + "prepare")["value"]
            rows.append(f"| {arch} ({f['batch']}, {f['image_size']}) | {engine} | {layout} | {precision} | "
                        f"{f['value']:.0f} ms | {f['gflops']:.0f} | **{f['share']:.0%}** | {evaluation['value']:.0f} ms | "
                        f"{evaluation['share']:.0%} | {prepare / f['value']:.0%} |")
    return "\n".join(rows).lstrip("\n") + "\n"


def precision_bars(lang: str) -> str:
    """Each CPU's latest workshop-bars run that trained in more than one precision: per model and
    precision over the seeds, the bar's figure, the job's minutes and their ratio to labkit's
    estimate; and the speed-up over FP32 in the same run (English: BENCHMARKS.md)."""
    def groups(run: dict) -> dict:
        """{model: {precision asked: its jobs' figures}}; keys are <model>-<engine>-n<processes>-<asked>-s<seed>."""
        jobs = {}
        for f in (f for f in run["figures"] if "precision" in f):  # figures before precisions were recorded: none
            model, asked, _seed = f["key"].rsplit("-", 2)
            jobs.setdefault(model, {}).setdefault(asked, []).append(f)
        return jobs

    rows = []
    for run in latest_per_cpu("workshop", keep=lambda run: any(len(g) > 1 for g in groups(run).values())):
        rows += [f"\n{measured_on(run, lang)}, seeds {', '.join(map(str, run['seeds']))}:\n",
                 "| model, engine, processes | precision | layout | bar's figure per seed | bar met | minutes per seed | "
                 "measured / estimated | FP32 minutes / these (median) |", "|---|---|---|---|---|---|---|---|"]
        for model, by_precision in groups(run).items():
            fp32 = by_precision.get("fp32")
            for asked, done in by_precision.items():
                computed = "/".join(sorted({f["precision"] for f in done}))
                figures = ", ".join(f"{f['value']:.1%}" if f["unit"] == "fraction" else f"{f['value']:.2f}x"
                                    for f in done)
                mins = [f["minutes"] for f in done]
                against_estimate = ", ".join(f"{f['minutes'] / f['estimated_minutes']:.2f}" for f in done)
                gain = (f"{statistics.median(f['minutes'] for f in fp32) / statistics.median(mins):.2f}" if fp32
                        else "-")
                rows.append(f"| {model} | {asked if asked == computed else f'{asked}: {computed}'} | "
                            f"{'/'.join(sorted({f['layout'] for f in done}))} | {figures} | "
                            f"{sum(f['bar'] for f in done)} of {len(run['seeds'])} | "
                            f"{', '.join(f'{m:.1f}' for m in mins)} | {against_estimate} | {gain} |")
    if not rows:
        raise NoResults("no workshop-bars run in two precisions: bench/bench_workshop.py --precisions fp32 bf16")
    return "\n".join(rows).lstrip("\n") + "\n"


def latest_per_cpu(bench: str, keep=lambda run: True) -> list[dict]:
    """The latest run of ``bench`` that ``keep`` accepts on each CPU (and kernel settings) measured,
    oldest first."""
    runs = {}
    for run in filter(keep, every(bench)):
        runs.pop(cpu_name(run["cpu"]), None)
        runs[cpu_name(run["cpu"])] = run
    return list(runs.values())


REGIONS = {"speed-of-light": speed_of_light, "precision-bars": precision_bars,
           "hub": hub, "transfer": transfer, "data": data_table, "quick-labs": quick_labs, "quick-span": quick_span,
           "workshop-lab": workshop_lab, "workshop-labs": workshop_labs, "test-time": test_time, "venv": venv,
           "disk": disk, "wheelhouse": wheelhouse}


def language(doc: str) -> str:
    return "zh-CN" if ".zh-CN." in doc else "en"


def render(text: str, lang: str) -> str:
    """The doc with every marked region generated again from the results."""
    def region(match: re.Match) -> str:
        name = match[2]
        if name not in REGIONS:
            raise NoResults(f"a region names {name!r}, which bench/docs.py does not know: one of {', '.join(REGIONS)}")
        return match[1] + REGIONS[name](lang) + match[4]
    return REGION.sub(region, text)


def regions(text: str) -> list[str]:
    return [m[2] for m in REGION.finditer(text)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; fail when a region is out of date")
    args = ap.parse_args()
    stale = []
    for doc in DOCS:
        path = ROOT / doc
        text = path.read_text()
        try:
            new = render(text, language(doc))
        except NoResults as exc:
            print(f"{doc}: {exc}", file=sys.stderr)
            return 1
        if new != text:
            stale.append(doc)
            if not args.check:
                path.write_text(new)
    verb = "out of date (run make docs)" if args.check else "regenerated"
    print(f"{verb}: {', '.join(stale)}" if stale else "every marked region is what bench/results says")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
