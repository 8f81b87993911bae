"""The two engines' hooks do the same arithmetic: from the same weights and the same batches,
SGD steps (momentum, weight decay, learning rate, the loss) end with the same weights in
MindSpore and PyTorch, so one recipe means one thing whichever engine trains it."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ms = pytest.importorskip("mindspore")

from labkit.algorithms.mindspore.engine import MindSporeEngine  # noqa: E402
from labkit.algorithms.pytorch.engine import TorchEngine  # noqa: E402

CLASSES = 3


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, 1, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, CLASSES)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


class MindSporeNet(ms.nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = ms.nn.Conv2d(3, 4, 3, 1, pad_mode="pad", padding=1, has_bias=False)
        self.bn = ms.nn.BatchNorm2d(4, eps=1e-5, momentum=0.9)
        self.fc = ms.nn.Dense(4, CLASSES)

    def construct(self, x):
        return self.fc(ms.ops.relu(self.bn(self.conv(x))).mean((2, 3)))


class TorchDensity(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, 1, 1)
        self.fuse = torch.nn.Conv2d(4, 1, 1)

    def forward(self, x):
        return torch.relu(self.fuse(torch.relu(self.conv(x))))


class MindSporeDensity(ms.nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = ms.nn.Conv2d(1, 4, 3, 1, pad_mode="pad", padding=1, has_bias=True)
        self.fuse = ms.nn.Conv2d(4, 1, 1, has_bias=True)

    def construct(self, x):
        return ms.ops.relu(self.fuse(ms.ops.relu(self.conv(x))))


NETS = {False: (TorchNet, MindSporeNet), True: (TorchDensity, MindSporeDensity)}
MS_NAME = {"bn.weight": "bn.gamma", "bn.bias": "bn.beta"}
MS_TORCH = {v: k for k, v in MS_NAME.items()}


def trained(engine_name: str, weights: dict, hp: dict, batches, counting: bool = False) -> dict:
    """The weights after one optimizer step per batch, through the engine's own hooks."""
    if engine_name == "pytorch":
        engine = TorchEngine()
        engine.setup("cpu", 0)
        engine.model = NETS[counting][0]()
        engine.model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=False)
    else:
        engine = MindSporeEngine()
        engine.setup("cpu", 0)
        engine.net = NETS[counting][1]()
        ms.load_param_into_net(engine.net, {MS_NAME.get(k, k): ms.Parameter(ms.Tensor(v), name=MS_NAME.get(k, k))
                                            for k, v in weights.items()})
    params = engine.model.named_parameters() if engine_name == "pytorch" else \
        [(MS_TORCH.get(p.name, p.name), p) for p in engine.net.trainable_params()]
    params = list(params)  # named before configure: MindSpore's train step prefixes the names
    engine.configure(hp, counting)
    engine.set_train(True)
    for lr, (x, y) in batches:
        engine.set_lr(lr)
        engine.train_step(x, y)
    return {k: p.detach().numpy() if engine_name == "pytorch" else p.asnumpy() for k, p in params}


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_sgd_steps_end_with_the_same_weights_in_both_engines(weight_decay):
    rng = np.random.default_rng(0)
    start = {k: v.detach().numpy().copy() for k, v in TorchNet().named_parameters()}
    start["bn.weight"] = rng.uniform(0.5, 1.5, 4).astype(np.float32)  # a gamma far from 0, so its decay shows
    batches = [(lr, (rng.standard_normal((8, 3, 8, 8)).astype(np.float32), rng.integers(0, CLASSES, 8)))
               for lr in (0.5, 0.3, 0.1)]
    hp = {"momentum": 0.9, "weight_decay": weight_decay}
    torch_w, ms_w = trained("pytorch", start, hp, batches), trained("mindspore", start, hp, batches)
    assert set(torch_w) == set(ms_w) == set(start)
    for name in start:
        np.testing.assert_allclose(ms_w[name], torch_w[name], atol=2e-5, err_msg=name)
    if weight_decay:
        # every parameter decays, BatchNorm's gamma and beta included (MindSpore's default skips them)
        plain = trained("pytorch", start, {**hp, "weight_decay": 0.0}, batches)
        assert all(np.abs(torch_w[k] - plain[k]).max() > 1e-3 for k in start)


def test_adam_steps_on_density_maps_end_with_the_same_weights_in_both_engines():
    # MCNN's default: Adam on the summed squared error of the density map, per image
    rng = np.random.default_rng(1)
    start = {k: v.detach().numpy().copy() for k, v in TorchDensity().named_parameters()}
    batches = [(lr, (rng.random((4, 1, 8, 8), np.float32), rng.random((4, 1, 8, 8), np.float32) * 0.1))
               for lr in (1e-2, 1e-2, 1e-3)]
    hp = {"lr": 1e-2, "optimizer": "adam"}
    torch_w = trained("pytorch", start, hp, batches, counting=True)
    ms_w = trained("mindspore", start, hp, batches, counting=True)
    assert set(torch_w) == set(ms_w) == set(start)
    for name in start:
        np.testing.assert_allclose(ms_w[name], torch_w[name], atol=2e-5, err_msg=name)
        assert np.abs(torch_w[name] - start[name]).max() > 1e-4, f"{name} did not move: the test would prove nothing"
