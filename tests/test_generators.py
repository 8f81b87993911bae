import hashlib

import numpy as np
import pytest
from PIL import Image

from labkit.data import crowd
from labkit.data.generate import generate


def digest(root, items):
    return {it["file"]: hashlib.sha256((root / it["file"]).read_bytes()).hexdigest() for it in items}


@pytest.mark.parametrize("kind", ["flowers", "food", "crowd", "digits", "glyphs"])
def test_same_seed_same_bytes_other_seed_other_images(tmp_path, kind):
    a = generate(kind, tmp_path / "a", 12, 32, seed=1)
    b = generate(kind, tmp_path / "b", 12, 32, seed=1)
    c = generate(kind, tmp_path / "c", 12, 32, seed=2)
    assert a == b
    assert digest(tmp_path / "a", a) == digest(tmp_path / "b", b)
    assert digest(tmp_path / "a", a) != digest(tmp_path / "c", c)


def test_a_longer_run_starts_with_the_same_images(tmp_path):
    short = generate("flowers", tmp_path / "s", 10, 32, seed=3)
    long = generate("flowers", tmp_path / "l", 30, 32, seed=3)
    d_short, d_long = digest(tmp_path / "s", short), digest(tmp_path / "l", long)
    assert all(d_long[f] == h for f, h in d_short.items())


def test_parallel_generation_equals_serial(tmp_path, monkeypatch):
    import labkit.data.generate as g

    monkeypatch.setattr(g, "PARALLEL_ABOVE", 10_000)
    serial = generate("food", tmp_path / "s", 40, 32, seed=0)
    monkeypatch.setattr(g, "PARALLEL_ABOVE", 10)
    parallel = generate("food", tmp_path / "p", 40, 32, seed=0)
    assert digest(tmp_path / "p", parallel) == digest(tmp_path / "s", serial)


@pytest.mark.parametrize("kind,classes", [("flowers", 5), ("food", 4)])
def test_classes_are_balanced_and_sized(tmp_path, kind, classes):
    items = generate(kind, tmp_path, classes * 4, 48, seed=0)
    labels = [it["label"] for it in items]
    assert len(set(labels)) == classes and all(labels.count(c) == 4 for c in set(labels))
    with Image.open(tmp_path / items[0]["file"]) as im:
        assert im.size == (48, 48) and im.mode == "RGB"


def test_flower_classes_are_not_told_apart_by_colour_alone(tmp_path):
    """Mean colour of an image must not identify its class: a nearest-centroid classifier on
    mean RGB stays far from perfect, so a model has to learn shape."""
    items = generate("flowers", tmp_path, 250, 32, seed=0)
    x = np.array([np.asarray(Image.open(tmp_path / it["file"]), dtype=float).mean((0, 1)) for it in items])
    y = np.array([it["label"] for it in items])
    train, test = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    centroids = {c: x[train & (y == c)].mean(0) for c in set(y)}
    pred = [min(centroids, key=lambda c: np.linalg.norm(v - centroids[c])) for v in x[test]]
    assert np.mean(np.array(pred) == y[test]) < 0.5  # chance is 0.2


def test_digits_are_sklearn_digits(tmp_path):
    from sklearn.datasets import load_digits

    items = generate("digits", tmp_path, 50, 16, seed=0)
    assert len(items) == 50 and {it["label"] for it in items} <= set("0123456789")
    index = int(items[0]["file"].split("_")[-1].split(".")[0]) - 1
    assert items[0]["label"] == str(load_digits().target[index])


def test_glyphs_are_letters_digitised_as_the_digits_were(tmp_path):
    from labkit.data.glyphs import CLASSES, draw_glyph

    items = generate("glyphs", tmp_path, 52, 32, seed=0)
    assert sorted({it["label"] for it in items}) == list(CLASSES) == list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert all(it["file"].endswith(".png") for it in items)  # grey levels kept, as the digits' PNGs
    # at 8 px, before upscaling: 4x4 blocks of a 32x32 bitmap counted, 0-16, as in the UCI digits
    levels = {int(k * 255 / 16) for k in range(17)}
    pixels = np.concatenate([np.asarray(draw_glyph(c, 8, np.random.default_rng([0, i]))).ravel()
                             for i, c in enumerate(CLASSES)])
    assert set(pixels.tolist()) <= levels and pixels.max() == 255 and (pixels == 0).mean() > 0.3


def test_crowd_annotations_lie_inside_and_match_the_mat_file(tmp_path):
    items = generate("crowd", tmp_path, 20, 96, seed=0)
    counts = [it["count"] for it in items]
    assert max(counts) > 10 and min(counts) < max(counts)
    for it in items:
        heads = crowd.read_ground_truth(tmp_path / it["ground_truth"])
        assert heads.shape == (it["count"], 2)
        assert ((heads >= 0) & (heads < 96)).all()


def test_ground_truth_has_shanghaitech_structure(tmp_path):
    from scipy.io import loadmat

    heads = np.array([[10.5, 20.25], [30.0, 40.0]])
    crowd.write_ground_truth(tmp_path / "GT_IMG_1.mat", heads)
    info = loadmat(tmp_path / "GT_IMG_1.mat")["image_info"]
    assert info.shape == (1, 1)
    assert np.allclose(info[0, 0][0, 0]["location"], heads)  # the access path ShanghaiTech code uses
    assert info[0, 0][0, 0]["number"].item() == 2


@pytest.mark.parametrize("sigma", [4.0, "adaptive"])
def test_density_map_keeps_the_count_at_a_quarter_size(sigma):
    rng = np.random.default_rng(0)
    heads = np.concatenate([rng.uniform(0, 99, (150, 2)), [[0, 0], [98.9, 98.9]]])  # two on the border
    d = crowd.density_map(heads, 99, 99, sigma)
    assert d.shape == (25, 25)
    assert d.sum() == pytest.approx(len(heads), rel=1e-5)
    assert crowd.density_map(np.zeros((0, 2)), 64, 64).sum() == 0


def test_adaptive_sigma_is_narrower_where_heads_are_dense():
    dense = np.array([[50 + i, 50.0] for i in range(5)])
    sparse = np.array([[10.0, 10.0], [90.0, 90.0], [10.0, 90.0], [90.0, 10.0]])
    assert crowd._adaptive_sigmas(dense).max() < crowd._adaptive_sigmas(sparse).min()


def test_bad_generator_arguments_say_what_to_do(tmp_path):
    from labkit.errors import LabkitError

    with pytest.raises(LabkitError, match="count"):
        generate("flowers", tmp_path, 0, 32, 0)
    with pytest.raises(LabkitError, match="size"):
        generate("flowers", tmp_path, 5, 4, 0)
    with pytest.raises(LabkitError, match="1797"):
        generate("digits", tmp_path, 5000, 32, 0)
