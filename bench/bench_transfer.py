"""The transfer lesson's resolution, chosen by measurement: what a training and an evaluation
image cost at each input size when the whole network trains, the last stage and the head, or
the head alone on a frozen backbone (labkit's own calibration of the loop, `train.timing`), and
what the two-step recipe from ImageNet weights (the card's `features` then `fine_tune` epochs)
would take on the real flower photos (3,670, split 0.8) on this machine.

The accuracy such a run reaches on the real photos is not measured here (the photos and the
weights need the internet): `bench/bench_real.py` measures it where they are reachable.

    .venv/bin/python bench/bench_transfer.py [--engines pytorch mindspore] [--sizes 96 128 160 224]
"""
import argparse
import os
import tempfile

from results import figure, save

def recipe_seconds(card, engine: str, size: int, batch: int, n_train: int, n_val: int) -> tuple[float, dict, dict]:
    """The two-step recipe's seconds at ``size``, and each step's seconds and epochs, from calibrated speeds."""
    from labkit.train import timing
    from labkit.algorithms.schedules import Schedule

    total, steps, epochs = 0.0, {}, {}
    for step in ("features", "fine_tune"):
        hp = card.resolve({**card.transfer_step(step, "workshop"), "image_size": size, "batch_size": batch}, "workshop")
        s = timing.speed(engine, card.arch, card.task, size, batch, log=lambda *_: None, train_layers=hp["train_layers"])
        epochs[step] = Schedule(hp).stop
        steps[step] = timing.epochs_seconds(s, epochs[step], n_train, n_val)
        total += steps[step]
    return total, steps, epochs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--engines", nargs="+", default=["pytorch", "mindspore"])
    p.add_argument("--sizes", nargs="+", type=int, default=[96, 128, 160, 224])
    p.add_argument("--algorithm", default="ResNet50")
    p.add_argument("--batch", type=int, default=16)
    args = p.parse_args()
    os.environ["LABKIT_CACHE"] = tempfile.mkdtemp(prefix="labkit-bench-transfer-")  # measured now, not read

    import inspect

    from labkit import catalog, cpu
    from labkit.algorithms.configs import TRAIN_LAYERS
    from labkit.data.public import DATASETS
    from labkit.data.versions import publish
    from labkit.train import timing

    card = catalog.card(args.algorithm)
    photos = DATASETS["flowers-photos"].images
    n_train = round(photos * inspect.signature(publish).parameters["train_ratio"].default)
    n_val = photos - n_train
    print(f"{cpu.summary()}; {card.name}, batch {args.batch}; ms per image (train / eval) by what trains", flush=True)
    figures = []
    for engine in args.engines:
        for size in args.sizes:
            cells = []
            for layers in TRAIN_LAYERS:
                s = timing.speed(engine, card.arch, card.task, size, args.batch, log=lambda *_: None, train_layers=layers)
                cells.append(f"{layers} {1000 * s.train_image:6.1f} / {1000 * s.eval_image:5.1f}")
                figures.append(figure(f"{engine}.{size}.{layers}.train_image", f"a training image, {engine}, {size} px, "
                                      f"training {layers}", 1000 * s.train_image, "ms", engine=engine, size=size,
                                      layers=layers))
                figures.append(figure(f"{engine}.{size}.{layers}.eval_image", f"an evaluation image, {engine}, {size} px",
                                      1000 * s.eval_image, "ms", engine=engine, size=size, layers=layers))
            total, steps, epochs = recipe_seconds(card, engine, size, args.batch, n_train, n_val)
            figures.append(figure(f"{engine}.{size}.recipe", f"the two-step recipe on the real photos, {engine}, {size} px",
                                  total / 60, "min", engine=engine, size=size, epochs=epochs,
                                  steps={k: round(v / 60, 2) for k, v in steps.items()}))
            print(f"{engine:<9} {size:>3} px  " + "   ".join(cells) +
                  f"   recipe on {n_train}+{n_val} photos: {total / 60:5.1f} min "
                  f"(features {steps['features'] / 60:.1f}, fine-tune {steps['fine_tune'] / 60:.1f})", flush=True)
    save("transfer", figures, profile="workshop", arguments=vars(args))


if __name__ == "__main__":
    main()
