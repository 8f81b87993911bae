"""``labkit eval``: stage 5, result.json from result files and a label file."""
from __future__ import annotations

from labkit.cli.output import emit, verb


def evaluate(args) -> int:
    from labkit import eval as evaluation

    out = args.out or "result.json"
    if args.kind == "classification":
        r = evaluation.classification(args.result_dir, args.labels, out)
        lines = ["  ".join(f"top{k} {100 * r[f'top{k}']:.2f}%" for k in range(1, 6)) + f"  ({len(r['confusion'])} classes)"]
    else:
        r = evaluation.counting(args.result_dir, args.labels, out)
        lines = [f"MAE {r['mae']:.3f}  RMSE {r['rmse']:.3f}"]
    if r["missing_results"]:
        lines.append(f"{len(r['missing_results'])} labelled image(s) had no result file, e.g. {r['missing_results'][0]}")
    lines.append(f"written to {out}")
    emit(args, r, "\n".join(lines))
    return 0


def add(sub) -> None:
    kinds = sub.add_parser("eval", help="stage 5: result.json from result files and a label file").add_subparsers(
        dest="kind", required=True, metavar="KIND")
    for kind, text in (("classification", "top-1..top-5 accuracy, per-class precision/recall, confusion matrix"),
                       ("counting", "MAE and RMSE of predicted counts")):
        e = verb(kinds, kind, text, evaluate)
        e.add_argument("result_dir", metavar="RESULT_DIR", help="<image stem>_1.txt files (batch or pipeline output)")
        e.add_argument("labels", metavar="LABELS", help="'<image name> <label>' per line")
        e.add_argument("--out", help="default result.json")
