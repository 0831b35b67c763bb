"""The networks (`facecascade.models`) and their weights."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from facecascade.models import NAMED_WEIGHTS, MTCNNNets, ONet, PNet, RNet, StageOutput, load_mtcnn, save_mtcnn
from facecascade.models.layers import CeilMaxPool2d, PReLU
from facecascade.models.weights import convert_facenet_state

# -- CeilMaxPool2d -----------------------------------------------------------------------------


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2)])
@pytest.mark.parametrize("h, w", [(3, 3), (4, 4), (5, 8), (8, 5), (10, 11), (22, 22), (23, 46), (9, 21)])
def test_ceil_max_pool_equals_max_pool(kernel, stride, h, w):
    x = torch.randn(2, 5, h, w)
    ref = nn.MaxPool2d(kernel, stride, ceil_mode=True)(x)
    out = CeilMaxPool2d(kernel, stride)(x)
    assert torch.equal(out, ref)
    cl = x.contiguous(memory_format=torch.channels_last)  # the layout the cascade runs in
    assert torch.equal(CeilMaxPool2d(kernel, stride)(cl), ref)


@pytest.mark.parametrize("kernel, stride, h, w", [(2, 2, 1, 1), (2, 2, 1, 6), (3, 2, 2, 2), (3, 2, 2, 7)])
def test_ceil_max_pool_input_smaller_than_kernel(kernel, stride, h, w):
    x = torch.randn(1, 2, h, w)
    ref = nn.MaxPool2d(kernel, stride, ceil_mode=True)(x)
    assert torch.equal(CeilMaxPool2d(kernel, stride)(x), ref)


def test_ceil_max_pool_gradient_matches_max_pool():
    x = torch.randn(1, 3, 9, 11)
    for kernel, stride in [(2, 2), (3, 2)]:
        a = x.clone().requires_grad_(True)
        b = x.clone().requires_grad_(True)
        g = torch.randn_like(nn.MaxPool2d(kernel, stride, ceil_mode=True)(x))
        (CeilMaxPool2d(kernel, stride)(a) * g).sum().backward()
        (nn.MaxPool2d(kernel, stride, ceil_mode=True)(b) * g).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 2)])
def test_ceil_max_pool_in_grad_mode(kernel, stride):
    """A forward pass with autograd on (training, or simply no ``no_grad``) must work."""
    x = torch.randn(1, 2, 7, 9, requires_grad=True)
    out = CeilMaxPool2d(kernel, stride)(x)
    assert torch.equal(out.detach(), nn.MaxPool2d(kernel, stride, ceil_mode=True)(x.detach()))


def test_ceil_max_pool_rejects_kernel_below_stride():
    with pytest.raises(ValueError):
        CeilMaxPool2d(1, 2)


# -- PReLU ------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, params", [(10, 10), (3, 1), (28, 28), (32, 32)])
@pytest.mark.parametrize("n, h, w", [(1, 37, 21), (3, 5, 4)])
def test_prelu_fast_path_equals_prelu(channels, params, n, h, w):
    """The in-place channels-last path (fewer than 16 channels) and the fallback both give
    ``nn.functional.prelu``'s numbers, with one slope per channel or one shared slope."""
    layer = PReLU(params)
    with torch.no_grad():
        layer.weight.copy_(torch.linspace(-0.8, 1.5, params))
    x = torch.randn(n, channels, h, w).contiguous(memory_format=torch.channels_last)
    ref = nn.functional.prelu(x, layer.weight.detach())
    with torch.inference_mode():
        out = layer(x.clone())
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_prelu_keeps_gradients_in_training():
    layer = PReLU(10)
    x = torch.randn(2, 10, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    layer(x).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None


# -- shapes and gradients ----------------------------------------------------------------------


@torch.no_grad()
def test_pnet_shapes():
    out = PNet()(torch.randn(3, 3, 30, 41))
    assert isinstance(out, StageOutput)
    assert out.logits.shape == (3, 2, 10, 16)  # ceil(28 / 2) - 4, ceil(39 / 2) - 4
    assert out.offsets.shape == (3, 4, 10, 16)
    assert out.landmarks is None
    assert PNet.window == 12 and PNet.stride == 2


def test_pnet_helpers_equal_heads():
    pnet = PNet().eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 20, 25)
        feats = pnet.trunk(x)
        out = pnet(x)
        margin = pnet.face_margin(feats)
        torch.testing.assert_close(margin, out.logits[:, 1] - out.logits[:, 0], atol=1e-5, rtol=1e-5)
        channels_last = pnet.face_margin(feats.contiguous(memory_format=torch.channels_last))  # the mv path
        torch.testing.assert_close(channels_last, margin, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.sigmoid(margin), out.logits.softmax(1)[:, 1], atol=1e-6, rtol=1e-5)
        cells = feats[1, :, 3, 4:7].T  # (3, 32)
        torch.testing.assert_close(pnet.cell_offsets(cells), out.offsets[1, :, 3, 4:7].T, atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_rnet_onet_shapes():
    r = RNet()(torch.randn(5, 3, 24, 24))
    assert isinstance(r, StageOutput)
    assert r.logits.shape == (5, 2) and r.offsets.shape == (5, 4) and r.landmarks is None
    o = ONet()(torch.randn(4, 3, 48, 48))
    assert o.logits.shape == (4, 2) and o.offsets.shape == (4, 4)
    assert o.landmarks.shape == (4, 5, 2)
    assert RNet.window == 24 and ONet.window == 48


@torch.no_grad()
def test_batch_of_one_and_zero():
    assert ONet()(torch.randn(1, 3, 48, 48)).landmarks.shape == (1, 5, 2)
    assert RNet()(torch.randn(0, 3, 24, 24)).logits.shape == (0, 2)


@pytest.mark.parametrize(
    "net, shape", [(PNet, (2, 3, 18, 24)), (PNet, (2, 3, 17, 23)), (RNet, (3, 3, 24, 24)), (ONet, (3, 3, 48, 48))]
)
def test_every_parameter_gets_a_gradient(net, shape):
    model = net()
    out = model(torch.randn(shape))
    total = sum(t.sum() for t in out if t is not None)
    total.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


# -- weights -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facenet():
    """facenet-pytorch carries the original weights; a missing package fails these tests."""
    import facenet_pytorch

    return facenet_pytorch


@pytest.fixture(scope="module")
def original() -> MTCNNNets:
    return load_mtcnn("mtcnn-original")


def test_loaded_nets_are_frozen_eval(original):
    for net in original:
        assert not net.training
        assert all(not p.requires_grad for p in net.parameters())
    assert isinstance(original.pnet, PNet) and isinstance(original.rnet, RNet) and isinstance(original.onet, ONet)


def _assert_same_stage(out, ref_probs, ref_offsets):
    torch.testing.assert_close(out.logits.softmax(1), ref_probs, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.offsets, ref_offsets, atol=1e-5, rtol=0)


@torch.no_grad()
def test_original_pnet_equals_facenet(original, facenet):
    ref = facenet.PNet().eval()
    for h, w in [(12, 12), (31, 46), (57, 40)]:
        x = torch.rand(2, 3, h, w) * 2 - 1
        ref_offsets, ref_probs = ref(x)
        _assert_same_stage(original.pnet(x), ref_probs, ref_offsets)


@torch.no_grad()
def test_original_rnet_equals_facenet(original, facenet):
    ref = facenet.RNet().eval()
    x = torch.rand(16, 3, 24, 24) * 2 - 1
    ref_offsets, ref_probs = ref(x)
    _assert_same_stage(original.rnet(x), ref_probs, ref_offsets)


@torch.no_grad()
def test_original_onet_equals_facenet(original, facenet):
    ref = facenet.ONet().eval()
    x = torch.rand(16, 3, 48, 48) * 2 - 1
    ref_offsets, ref_points, ref_probs = ref(x)
    out = original.onet(x)
    _assert_same_stage(out, ref_probs, ref_offsets)
    assert ref_points.shape == (16, 10)  # x1..x5, y1..y5
    torch.testing.assert_close(out.landmarks.transpose(1, 2).reshape(16, 10), ref_points, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.landmarks[:, :, 0], ref_points[:, :5], atol=1e-5, rtol=0)


@pytest.mark.parametrize("stage", ["pnet", "rnet", "onet"])
def test_original_channels_last_inference_equals_facenet(original, facenet, stage):
    """How the cascade runs the nets: channels-last weights and inputs, under inference mode."""
    ref = getattr(facenet, stage.upper()[0] + "Net")().eval()
    ours = getattr(original, stage)
    shape = {"pnet": (2, 3, 37, 50), "rnet": (9, 3, 24, 24), "onet": (9, 3, 48, 48)}[stage]
    x = torch.rand(shape) * 2 - 1
    fast = copy.deepcopy(ours).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = fast(x.contiguous(memory_format=torch.channels_last))
        ref_out = ref(x)
    torch.testing.assert_close(out.logits.softmax(1), ref_out[-1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out.offsets, ref_out[0], atol=1e-5, rtol=0)
    if stage == "onet":
        torch.testing.assert_close(out.landmarks.transpose(1, 2).reshape(len(x), 10), ref_out[1], atol=1e-5, rtol=0)


def test_convert_facenet_state_rejects_unknown_keys(facenet):
    state = facenet.PNet().state_dict()
    converted = convert_facenet_state("pnet", state)
    assert set(converted) == set(PNet().state_dict())
    state["conv9.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="conv9"):
        convert_facenet_state("pnet", state)


def _outputs(nets: MTCNNNets) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        p = nets.pnet(torch.rand(1, 3, 25, 31, generator=g))
        r = nets.rnet(torch.rand(4, 3, 24, 24, generator=g))
        o = nets.onet(torch.rand(4, 3, 48, 48, generator=g))
    return [t for out in (p, r, o) for t in out if t is not None]


def test_save_load_round_trip_random_nets(tmp_path):
    nets = MTCNNNets(PNet(), RNet(), ONet())
    path = tmp_path / "random.pt"
    save_mtcnn(path, nets, meta={"note": "test"})
    loaded = load_mtcnn(path)
    for a, b in zip(_outputs(nets), _outputs(loaded)):
        assert torch.equal(a, b)
    assert torch.load(path, weights_only=True)["meta"] == {"note": "test"}
    loaded_str = load_mtcnn(str(path))
    for a, b in zip(_outputs(nets), _outputs(loaded_str)):
        assert torch.equal(a, b)
    # and it is really different from another random init (the comparison can fail)
    assert not torch.equal(_outputs(nets)[0], _outputs(MTCNNNets(PNet(), RNet(), ONet()))[0])


def test_save_load_round_trip_original(tmp_path, original):
    path = tmp_path / "orig.pth"
    save_mtcnn(path, original)
    loaded = load_mtcnn(path)
    for a, b in zip(_outputs(original), _outputs(loaded)):
        assert torch.equal(a, b)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError) as info:
        load_mtcnn("retinaface-resnet50")
    assert "mtcnn-original" in str(info.value)
    assert set(NAMED_WEIGHTS) == {"mtcnn", "mtcnn-joint", "mtcnn-original", "mtcnn-2026-12-05"}


def test_packaged_mtcnn_weights_load_with_their_operating_point():
    from facecascade.models.weights import load_mtcnn_with_meta
    from facecascade.registry import PACKAGED

    assert (PACKAGED / "mtcnn.pt").stat().st_size < 4_000_000  # small enough to ship
    nets, meta = load_mtcnn_with_meta("mtcnn")
    assert isinstance(nets, MTCNNNets) and nets.onet.num_landmarks == 5
    assert len(meta["thresholds"]) == 3 and all(0 < t < 1 for t in meta["thresholds"])
    assert "research use" in meta["data"]
    assert not any(p.requires_grad for net in nets for p in net.parameters())


def test_missing_checkpoint(tmp_path):
    for name in ("missing.pt", "missing.pth"):
        path = tmp_path / name
        with pytest.raises(FileNotFoundError) as info:
            load_mtcnn(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content", ["tensor", "dict_without_nets", "list", "junk_bytes", "pickled_module", "wrong_state_dicts"]
)
def test_checkpoint_holding_something_else(tmp_path, content):
    path = tmp_path / f"{content}.pt"
    if content == "tensor":
        torch.save(torch.zeros(3), path)
    elif content == "dict_without_nets":
        torch.save({"pnet": PNet().state_dict(), "meta": {}}, path)
    elif content == "list":
        torch.save([PNet().state_dict()], path)
    elif content == "junk_bytes":
        path.write_bytes(b"this is not a checkpoint")
    elif content == "pickled_module":  # a common mistake: torch.save(model) instead of a state dict
        torch.save(PNet(), path)
    else:  # the three nets' state dicts in the wrong slots
        torch.save({"pnet": ONet().state_dict(), "rnet": RNet().state_dict(), "onet": PNet().state_dict()}, path)
    with pytest.raises(ValueError) as info:
        load_mtcnn(path)
    assert str(path) in str(info.value)


def test_weights_fingerprint_follows_the_bytes_not_the_name(tmp_path):
    import hashlib
    import shutil

    from facecascade.models.weights import weights_files, weights_fingerprint
    from facecascade.registry import PACKAGED

    copy = tmp_path / "copy.pt"
    shutil.copyfile(PACKAGED / "mtcnn.pt", copy)
    assert weights_fingerprint(str(copy)) == weights_fingerprint("mtcnn")
    assert weights_fingerprint("mtcnn") == hashlib.sha256((PACKAGED / "mtcnn.pt").read_bytes()).hexdigest()
    assert weights_fingerprint("mtcnn-joint") != weights_fingerprint("mtcnn")
    assert [p.name for p in weights_files("mtcnn-original")] == ["pnet.pt", "rnet.pt", "onet.pt"]
    with pytest.raises(ValueError, match="unknown weights"):
        weights_fingerprint("no-such-weights")
    with pytest.raises(FileNotFoundError, match="gone.pt"):
        weights_fingerprint(str(tmp_path / "gone.pt"))
