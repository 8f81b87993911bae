"""An example custom algorithm: nearest class mean on tiny thumbnails, NumPy only.

It follows the convention every labkit algorithm follows (the seeds' ModelArts one):

    python train.py --data_url DATASET_VERSION_DIR --train_url OUTPUT_DIR --<name>=<value> ...

It reads the version's manifests (train.jsonl, val.jsonl), writes what it learned and an
eval.json into --train_url, and exits 0. Register and train it with:

    labkit algo create --name mean-color --code-dir data/custom_algorithm --boot-file train.py \\
        --engine pytorch --hyper thumb:int:8
    labkit train create --algorithm mean-color --engine pytorch --dataset flowers@V001 --name my-first
"""
import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("--data_url", required=True)
p.add_argument("--train_url", required=True)
p.add_argument("--thumb", type=int, default=8, help="thumbnail size the class means are taken at")
p.add_argument("--device", default="cpu")
args = p.parse_args()


def load(split):
    rows = [json.loads(line) for line in open(Path(args.data_url) / f"{split}.jsonl")]
    x = np.stack([np.asarray(Image.open(Path(args.data_url) / r["source"]).convert("RGB")
                             .resize((args.thumb, args.thumb)), dtype=np.float32).ravel() for r in rows])
    return x, [r["annotation"][0]["name"] for r in rows]


x_train, y_train = load("train")
x_val, y_val = load("val")
classes = sorted(set(y_train))
means = np.stack([x_train[[y == c for y in y_train]].mean(0) for c in classes])
pred = [classes[i] for i in np.argmin(((x_val[:, None] - means[None]) ** 2).sum(-1), 1)]
accuracy = float(np.mean([p == t for p, t in zip(pred, y_val)]))
out = Path(args.train_url)
np.save(out / "class_means.npy", means)
(out / "eval.json").write_text(json.dumps({"accuracy": accuracy, "samples": len(y_val)}))
print(f"nearest class mean at {args.thumb}x{args.thumb}: validation accuracy {accuracy:.3f}")
