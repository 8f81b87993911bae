"""The published architectures in both engines: exact trainable parameter counts
(docs/reference/architectures.md), output shapes, and weights that move across engines."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
ms = pytest.importorskip("mindspore")

from labkit.algorithms import names  # noqa: E402
from labkit.algorithms.mindspore import models as msm  # noqa: E402
from labkit.algorithms.pytorch import models as ptm  # noqa: E402


def torch_count(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def ms_count(model):
    return sum(p.size for p in model.trainable_params())


def ms_run(model, x):
    model.set_train(False)
    return model(ms.Tensor(x)).asnumpy()


def torch_run(model, x):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("builder,args,params", [
    ("resnet50", (1000,), 25_557_032), ("resnet50", (1001,), 25_559_081),
    ("ghostnet", (1000, 1.0), 5_182_508), ("ghostnet", (1000, 0.5), 2_587_292), ("ghostnet", (1000, 1.3), 7_358_820),
    ("mcnn", (), 127_953),
])
def test_parameter_counts_match_the_papers(builder, args, params):
    assert torch_count(ptm.BUILDERS[builder](*args)) == params
    assert ms_count(msm.BUILDERS[builder](*args)) == params


def test_mcnn_columns_match_the_paper():
    m = ptm.mcnn()
    assert [torch_count(getattr(m, f"branch{i}")) for i in (1, 2, 3)] + [torch_count(m.fuse)] == [57_816, 46_070, 24_036, 31]


@pytest.mark.parametrize("size", [224, 240])
def test_ghostnet_output_shape(size):
    x = np.zeros((2, 3, size, size), np.float32)
    assert torch_run(ptm.ghostnet(10), x).shape == (2, 10)
    assert ms_run(msm.ghostnet(10), x).shape == (2, 10)


def test_resnet_output_shape_and_bn_stats_are_not_trainable():
    x = np.zeros((1, 3, 64, 64), np.float32)
    assert torch_run(ptm.resnet50(5), x).shape == (1, 5)
    m = msm.resnet50(5)
    assert ms_run(m, x).shape == (1, 5)
    assert len(m.parameters_dict()) == 267 and sum(p.size for p in m.get_parameters()) == 25_610_152 - 2049 * 995


@pytest.mark.parametrize("h,w", [(64, 96), (100, 72)])
def test_mcnn_density_map_is_a_quarter_of_the_input(h, w):
    x = np.zeros((1, 1, h, w), np.float32)
    assert torch_run(ptm.mcnn(), x).shape == (1, 1, h // 4, w // 4)
    assert ms_run(msm.mcnn(), x).shape == (1, 1, h // 4, w // 4)


def randomized(model):
    """A PyTorch model with random weights and BN statistics (fresh BN stats are 0 and 1,
    which would hide a swapped mean/variance)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * (0.05 if t.dim() > 1 else 0.1))
    return model


@pytest.mark.parametrize("builder,shape", [("resnet50", (2, 3, 64, 64)), ("mcnn", (1, 1, 48, 64))])
def test_weights_move_between_engines_with_the_same_outputs(builder, shape):
    args = (7,) if builder == "resnet50" else ()
    tm = randomized(ptm.BUILDERS[builder](*args))
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    arrays = {k: v.numpy() for k, v in tm.state_dict().items()}
    mm = msm.BUILDERS[builder](*args)
    converted = names.torch_to_mindspore(arrays)
    assert set(converted) == set(mm.parameters_dict())
    ms.load_param_into_net(mm, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in converted.items()}, strict_load=True)
    expected, got = torch_run(tm, x), ms_run(mm, x)
    scale = max(1.0, np.abs(expected).max())
    assert np.abs(expected - got).max() / scale < 1e-4
    # and back: MindSpore names map onto the PyTorch state dict one to one
    back = names.mindspore_to_torch({k: p.asnumpy() for k, p in mm.parameters_dict().items()})
    assert set(back) == {k for k in arrays if not k.endswith("num_batches_tracked")}
