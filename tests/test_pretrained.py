"""Published ImageNet weights (labkit.algorithms.pretrained) are the reference networks exactly:
torchvision's ResNet-50 and timm's GhostNet, built with random weights and saved as their
publishers save them, are served by a local HTTP server, fetched and renamed by labkit, loaded
into both engines, and give the reference's logits on the same batch; every tensor is used."""
import dataclasses
import functools
import hashlib
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from helpers import remote_for
from labkit.algorithms import pretrained
from labkit.downloads import cached_path
from labkit.errors import LabkitError

torch = pytest.importorskip("torch")
ms = pytest.importorskip("mindspore")

pytestmark = pytest.mark.slow  # two ResNet-50s and two GhostNets, one of each compiled by MindSpore


@functools.cache
def _torchvision():
    """torchvision, importable with this machine's CPU build of torch. PyPI's torchvision wheel is
    linked against CUDA torch: its C++ detection ops (nms ...) do not load here, and its import
    then fails on declaring two of them. The models need none of them; declaring those two
    operators' schemas (only where the library does not load) lets the real package import."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        pytest.skip("torchvision is not installed (pip install -e '.[dev]')")
    library = next(Path(spec.submodule_search_locations[0]).glob("_C*.so"), None)
    try:
        torch.ops.load_library(str(library))
    except (OSError, TypeError):
        declared = torch.library.Library("torchvision", "DEF")
        for op in ("nms", "qnms"):
            declared.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _torchvision.keep = declared  # a Library's definitions last as long as it does
    import torchvision

    return torchvision


def reference(arch):
    """The reference network with random weights and random BatchNorm statistics, in eval mode."""
    if arch == "resnet50":
        net = _torchvision().models.resnet50()
    else:
        _torchvision()  # timm imports torchvision
        timm = pytest.importorskip("timm")
        net = timm.create_model("ghostnet_100", pretrained=False)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.2, 0.2, generator=generator)
                module.running_mean.uniform_(-0.2, 0.2, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(module, torch.nn.Linear):  # logits near 1, as trained ones are, not in the hundreds:
                module.weight.mul_(0.01)                # float32 rounding then stays far under the 1e-4 compared
    return net.eval()


def publish(file_server, monkeypatch, arch, state):
    """Serve ``state`` as the publisher's file and point labkit's catalogue at it."""
    buf = io.BytesIO()
    torch.save(state, buf)
    payload = buf.getvalue()
    name = f"{arch}-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    weights = pretrained.WEIGHTS[arch]
    remote = dataclasses.replace(remote_for(file_server, name, payload), size=None if arch == "ghostnet" else len(payload))
    monkeypatch.setitem(pretrained.WEIGHTS, arch, dataclasses.replace(weights, remote=remote))


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LABKIT_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("arch", ["resnet50", "ghostnet"])
def test_published_weights_give_the_reference_logits_in_both_engines(file_server, monkeypatch, arch):
    from labkit.algorithms.mindspore.engine import load_pretrained as ms_load
    from labkit.algorithms.mindspore.models import build as ms_build
    from labkit.algorithms.pytorch.engine import load_pretrained as torch_load
    from labkit.algorithms.pytorch.models import build as torch_build

    net = reference(arch)
    publish(file_server, monkeypatch, arch, net.state_dict())
    path = pretrained.fetch(arch, log=lambda *_: None)
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()

    ours = torch_build(arch, 1000, {})
    loaded, skipped = torch_load(ours, str(path))
    assert skipped == [] and len(loaded) == len(net.state_dict())  # every published tensor, none left out
    with torch.no_grad():
        np.testing.assert_allclose(ours.eval()(torch.from_numpy(x)).numpy(), expected, atol=1e-4, rtol=0)

    cell = ms_build(arch, 1000, {})
    loaded, skipped = ms_load(cell, str(path))
    assert skipped == [] and len(loaded) == len(cell.parameters_dict())
    cell.set_train(False)
    np.testing.assert_allclose(cell(ms.Tensor(x)).asnumpy(), expected, atol=1e-4, rtol=0)


def test_weights_that_are_not_the_network_are_refused_naming_the_tensors(file_server, monkeypatch):
    state = reference("resnet50").state_dict()
    state["layer5.0.conv1.weight"] = state.pop("layer4.2.conv3.weight")
    publish(file_server, monkeypatch, "resnet50", state)
    with pytest.raises(LabkitError) as err:
        pretrained.fetch("resnet50", log=lambda *_: None)
    assert "layer5.0.conv1.weight: no such tensor" in err.value.message
    assert "layer4.2.conv3.weight: missing" in err.value.message
    assert not list(cached_path(pretrained.WEIGHTS["resnet50"].remote).parent.glob("*.npz"))


def test_ghostnet_weights_fit_width_one_only():
    pretrained.check_hyper("ghostnet", {"width": 1.0})
    with pytest.raises(LabkitError, match="width=1.0"):
        pretrained.check_hyper("ghostnet", {"width": 1.3})
    with pytest.raises(LabkitError, match="no published ImageNet weights for mcnn"):
        pretrained.published("mcnn")


def state_of(engine, names) -> dict:
    """Every weight and BatchNorm statistic under PyTorch's names, as NumPy; ``names``: MindSpore's
    parameter names, taken before ``configure`` (its train step prefixes them)."""
    if engine.name == "pytorch":
        return {k: v.detach().numpy().copy() for k, v in engine.model.state_dict().items() if v.is_floating_point()}
    from labkit.algorithms.names import mindspore_to_torch

    return mindspore_to_torch({n: p.asnumpy().copy() for n, p in zip(names, engine.net.get_parameters())})


@pytest.mark.parametrize("engine_name", ["pytorch", "mindspore"])
@pytest.mark.parametrize("train_layers", ["head", "last"])
def test_a_frozen_backbone_stays_as_it_was_and_the_rest_trains(engine_name, train_layers):
    """Feature extraction trains the head alone; fine-tuning the last stage too. Whatever is
    frozen keeps its weights and its BatchNorm statistics through a training step."""
    from labkit.algorithms import configs, loop

    engine = loop.engine(engine_name)
    engine.setup("cpu", 0)
    engine.build("resnet50", 3, {})
    trainable = configs.trainable("resnet50", train_layers)
    engine.freeze(trainable)
    names = [p.name for p in engine.net.get_parameters()] if engine_name == "mindspore" else None
    engine.configure({"momentum": 0.9, "weight_decay": 1e-4}, counting=False)
    before = state_of(engine, names)
    engine.set_train(True)
    engine.set_lr(0.1)
    rng = np.random.default_rng(0)
    engine.train_step(rng.normal(size=(4, 3, 32, 32)).astype(np.float32), np.array([0, 1, 2, 0]))
    after = state_of(engine, names)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed and all(k.startswith(trainable) for k in changed), sorted(changed)[:5]
    assert "fc.weight" in changed
    assert ("layer4.2.conv3.weight" in changed) == (train_layers == "last")
    assert ("layer4.0.bn1.running_mean" in changed) == (train_layers == "last")  # its statistics move only when it trains


@pytest.mark.parametrize("engine", ["pytorch", "mindspore"])
def test_the_two_step_transfer_lesson_from_imagenet_weights(ws, file_server, monkeypatch, engine):
    """Feature extraction from the ImageNet weights (the head alone trains), then fine-tuning the
    last stage from that job at a lower rate: both jobs complete, the first leaves the backbone
    exactly as published."""
    from labkit import data, train
    from labkit.train import jobs

    net = reference("ghostnet")
    publish(file_server, monkeypatch, "ghostnet", net.state_dict())
    data.make("flowers", name="fl", count=25, size=32, seed=0)
    flowers = "fl@" + data.publish("fl")["version"]
    tiny = {"image_size": "32", "batch_size": "8", "epochs": "1", "warmup_epochs": "0"}
    features = train.create("GhostNet", engine, flowers, "features", {**tiny, "pretrained": "imagenet",
                            "train_layers": "head"}, wait=True, log=lambda *_: None)
    assert features["state"] == "COMPLETED", train.logs("features")
    assert features["hyper"]["pretrained"] == "imagenet" and features["hyper"]["pretrained_weight"].endswith(".labkit.npz")
    assert "skipped 2: classifier.bias, classifier.weight" in train.logs("features")
    best = jobs.checkpoint(train.output_dir("features"), engine)
    if engine == "pytorch":
        saved = torch.load(best, weights_only=True)["model"]["blocks.3.2.ghost1.primary_conv.0.weight"].numpy()
    else:
        saved = ms.load_checkpoint(str(best))["blocks.3.2.ghost1.primary_conv.0.weight"].asnumpy()
    published = net.state_dict()["blocks.6.1.ghost1.primary_conv.0.weight"].numpy()  # the reference's grouping
    np.testing.assert_array_equal(saved, published)
    tuned = train.create("GhostNet", engine, flowers, "tuned", {**tiny, "pretrained_weight": "features",
                         "train_layers": "last", "lr": "0.01"}, wait=True, log=lambda *_: None)
    assert tuned["state"] == "COMPLETED", train.logs("tuned")
    assert "skipped 0" in train.logs("tuned")
