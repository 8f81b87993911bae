"""How a job computes on this machine (labkit.train.speedups): the layout and precision
decided from controlled CPU features and calibrations, and the PyTorch engine computing in each,
with checkpoints the same whatever the layout."""
import numpy as np
import pytest
import torch

from labkit import catalog, cpu
from labkit.algorithms.pytorch.engine import TorchEngine
from labkit.errors import LabkitError
from labkit.tasks import COUNTING
from labkit.train import speedups, timing
from labkit.train.timing import Speed

AVX2 = ["AVX2"]
ZEN4 = ["AVX2", "AVX-512", "AVX-512 VNNI", "AVX-512 BF16"]
RESNET, MCNN = catalog.card("ResNet50"), catalog.card("MCNN")


def hp(card, **given):
    return card.resolve(given, "quick")


def with_features(monkeypatch, features: list[str] | None) -> None:
    """This machine as labkit describes it, with the vector features given."""
    machine = cpu.describe()
    monkeypatch.setattr(cpu, "describe", lambda: {**machine, "features": features})


def test_bf16_only_where_the_cpu_computes_it():
    with pytest.raises(LabkitError, match="this one would emulate it, slower than FP32") as err:
        speedups.precision(RESNET, "pytorch", hp(RESNET, precision="bf16"), features=AVX2)
    assert "precision=fp32" in err.value.hint
    assert speedups.precision(RESNET, "pytorch", hp(RESNET, precision="bf16"), features=ZEN4)["precision"] == "bf16"
    # on a GPU the CPU's features do not matter
    assert speedups.precision(RESNET, "pytorch", hp(RESNET, precision="bf16"), "gpu", features=AVX2)["precision"] == "bf16"


def test_bf16_is_refused_where_the_cpu_features_are_unknown(monkeypatch):
    with_features(monkeypatch, None)  # what a system without /proc/cpuinfo gives
    with pytest.raises(LabkitError, match="cannot read this system's CPU features"):
        speedups.precision(RESNET, "pytorch", hp(RESNET, precision="bf16"))


def test_auto_is_bf16_only_for_a_model_measured_to_keep_its_accuracy(monkeypatch):
    monkeypatch.setattr(speedups, "BF16_KEEPS_ACCURACY", {})
    assert speedups.precision(RESNET, "pytorch", hp(RESNET), features=ZEN4)["precision"] == "fp32"
    monkeypatch.setitem(speedups.BF16_KEEPS_ACCURACY, "resnet50", "a controlled claim")
    assert speedups.precision(RESNET, "pytorch", hp(RESNET), features=ZEN4)["precision"] == "bf16"
    assert speedups.precision(RESNET, "pytorch", hp(RESNET), features=AVX2)["precision"] == "fp32"
    assert speedups.precision(RESNET, "mindspore", hp(RESNET), features=ZEN4)["precision"] == "fp32"
    assert speedups.precision(MCNN, "pytorch", hp(MCNN), features=ZEN4)["precision"] == "fp32"
    # a job told so when auto chose bf16, and not otherwise
    said = []
    with_features(monkeypatch, ZEN4)
    assert speedups.settle(RESNET, "pytorch", hp(RESNET, layout="nchw"), log=said.append)["precision"] == "bf16"
    assert said == ["precision bf16: this CPU computes BF16 natively, and resnet50 keeps its accuracy in it "
                    "(measured: a controlled claim); precision=fp32 trains in FP32"]
    said.clear()
    assert speedups.settle(RESNET, "pytorch", hp(RESNET, layout="nchw", precision="bf16"), log=said.append)
    assert speedups.settle(MCNN, "pytorch", hp(MCNN, layout="nchw"), log=said.append)["precision"] == "fp32"
    assert not said


def test_the_models_kept_in_bf16_are_catalog_architectures():
    # a misspelt name would silently keep its model in FP32
    assert set(speedups.BF16_KEEPS_ACCURACY) <= {card.arch for card in catalog.cards()}


@pytest.mark.parametrize("given", [{"layout": "channels_last"}, {"precision": "bf16"}])
def test_mindspore_computes_in_nchw_and_fp32(given):
    with pytest.raises(LabkitError, match="mindspore engine computes in"):
        speedups.precision(MCNN, "mindspore", hp(MCNN, **given), features=ZEN4)


def calibrated(monkeypatch, measured: Speed):
    """A cache of this test's own holding ``measured`` for the shape, written as a calibration writes it."""
    monkeypatch.setattr(timing, "_calibrate", lambda shape: (measured, 0.0))
    timing.speed("pytorch", "mcnn", COUNTING, 128, 4, log=lambda _: None)


def test_auto_layout_is_the_one_the_calibration_found_faster(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path))
    with_features(monkeypatch, AVX2)  # FP32, whatever this CPU computes natively: the precision is tested above
    said = []
    # not timed yet: NCHW, and the job is told why
    assert speedups.settle(MCNN, "pytorch", hp(MCNN), log=said.append)["layout"] == "nchw"
    assert "not been timed on this machine" in said[-1]
    faster = Speed(1.0, 0.02, 0.01, 0.1, "channels_last", {"nchw": [0.03, 0.01], "channels_last": [0.02, 0.01]})
    calibrated(monkeypatch, faster)
    assert speedups.settle(MCNN, "pytorch", hp(MCNN), log=said.append)["layout"] == "channels_last"
    assert "1.33x as fast as nchw" in said[-1]
    assert speedups.settle(MCNN, "pytorch", hp(MCNN, layout="nchw"))["layout"] == "nchw"   # asked for: kept
    assert speedups.settle(MCNN, "pytorch", hp(MCNN), "gpu")["layout"] == "nchw"
    # several machines compute alike whatever each one timed; MindSpore has one layout to take
    assert speedups.settle(MCNN, "pytorch", hp(MCNN), nnodes=2)["layout"] == "nchw"
    said.clear()
    assert speedups.settle(MCNN, "mindspore", hp(MCNN), log=said.append)["layout"] == "nchw" and not said
    # an estimate of a job in the slower layout uses that layout's figures
    assert faster.at("nchw").train_image == 0.03 and faster.at("auto") == faster


def test_a_calibration_picks_another_layout_only_when_clearly_faster():
    assert timing.faster_layout({"nchw": (1.0, 0.2), "channels_last": (0.98, 0.2)}) == "nchw"
    assert timing.faster_layout({"nchw": (1.0, 0.2), "channels_last": (0.8, 0.2)}) == "channels_last"
    assert timing.faster_layout({"nchw": (1.0, 0.2)}) == "nchw"


def engine(layout="nchw", precision="fp32", seed=0) -> TorchEngine:
    e = TorchEngine()
    e.setup("cpu", seed)
    e.build("mcnn", 0, {"layout": layout, "precision": precision})
    e.configure({"lr": 1e-3}, counting=True)
    return e


BATCH = np.random.default_rng(0).normal(size=(2, 1, 32, 32)).astype(np.float32)
DENSITY = np.abs(np.random.default_rng(1).normal(size=(2, 1, 8, 8))).astype(np.float32)


def test_channels_last_trains_the_same_network_and_saves_a_plain_checkpoint(tmp_path):
    plain, nhwc = engine("nchw"), engine("channels_last")
    assert next(nhwc.model.parameters()).is_contiguous(memory_format=torch.channels_last)
    for e in (plain, nhwc):
        for _ in range(3):
            loss, out = e.train_step(BATCH, DENSITY)
        assert np.isfinite(loss) and out.shape == (2, 1, 8, 8)
    # the same weights to begin with, the same arithmetic in another order: the same numbers, nearly
    np.testing.assert_allclose(nhwc.predict(BATCH), plain.predict(BATCH), rtol=1e-3, atol=1e-5)
    nhwc.save(tmp_path / "ckpt", 3, None)
    saved = torch.load(tmp_path / "ckpt", weights_only=True)
    tensors = [*saved["model"].values(), *(v for s in saved["optimizer"]["state"].values() for v in s.values()
                                          if isinstance(v, torch.Tensor))]
    assert all(t.is_contiguous() for t in tensors) and len(tensors) > len(saved["model"])
    resumed = engine("channels_last", seed=1)
    assert resumed.resume(tmp_path / "ckpt") == (3, None)
    moments = [v for s in resumed.opt.state.values() for v in s.values() if isinstance(v, torch.Tensor) and v.dim() == 4]
    assert moments and all(v.is_contiguous(memory_format=torch.channels_last) for v in moments)
    for layout in ("nchw", "channels_last"):   # either layout loads it and computes what was trained
        reloaded = engine(layout, seed=1)
        reloaded.load_best(tmp_path / "ckpt")
        np.testing.assert_allclose(reloaded.predict(BATCH), nhwc.predict(BATCH), rtol=1e-3, atol=1e-5)


def test_bf16_computes_convolutions_in_bfloat16_and_keeps_fp32_weights(tmp_path):
    # the mechanism, on a tiny network (emulated here when the CPU has no native BF16: slow, but exact)
    e = engine(precision="bf16")
    seen = []
    e.model.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    loss, out = e.train_step(BATCH, DENSITY)
    assert seen == [torch.bfloat16] and np.isfinite(loss) and out.dtype == np.float32
    assert e.predict(BATCH).dtype == np.float32
    assert all(p.dtype == torch.float32 for p in e.model.parameters())
    e.save(tmp_path / "ckpt", 1, None)
    assert all(t.dtype == torch.float32 for t in torch.load(tmp_path / "ckpt", weights_only=True)["model"].values()
               if t.is_floating_point())


def test_the_training_script_refuses_what_its_engine_cannot_compute_in():
    from labkit.algorithms import configs

    assert configs.not_offered("mindspore", {"layout": "channels_last"}) == (
        "labkit's mindspore engine computes in layout nchw, not channels_last")
    assert configs.not_offered("pytorch", {"layout": "channels_last", "precision": "bf16"}) is None
    assert configs.not_offered("mindspore", {"layout": "auto", "precision": "auto"}) is None
