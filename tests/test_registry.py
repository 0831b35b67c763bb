"""The registry of named weights: its table against the shipped files, SHA-256 checks at load,
kinds, and ``facecascade weights list|info``."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
from pathlib import Path

import pytest

import facecascade
from facecascade import registry
from facecascade.cli import main
from facecascade.registry import PACKAGED, WeightsIntegrityError, list_weights, weights_info

SHIPPED = ["mtcnn", "mtcnn-joint", "mtcnn-2026-12-05", "cascade-rcnn", "faster-rcnn", "dcrn", "mcfa"]


def test_every_shipped_file_is_registered_with_its_sha256_and_card():
    registered = {file for name in list_weights() for file in weights_info(name).sha256 if name != "mtcnn-original"}
    assert registered == {p.name for p in PACKAGED.glob("*.pt")}  # nothing shipped without an entry
    for name in SHIPPED:
        info = weights_info(name)
        for path, expected in zip(info.files, info.sha256.values()):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == expected, f"{name}: update registry.json"
        assert info.card_path is not None and info.card_path.is_file()
        assert "research use" in info.licence and info.training_data and info.metrics
        assert info.card_path.read_text(encoding="utf-8").count("Research use only") >= 1


def test_the_original_weights_are_facenet_pytorchs_files():
    info = weights_info("mtcnn-original")
    assert info.source == "facenet-pytorch" and list(info.sha256) == ["pnet.pt", "rnet.pt", "onet.pt"]
    assert registry.verified_files("mtcnn-original") == info.files  # the pinned 2.6.0 files


def test_names_kinds_and_defaults():
    assert list_weights() == ["mtcnn", "mtcnn-joint", "mtcnn-original", *SHIPPED[2:]]
    assert list_weights("detector") == ["mtcnn", "mtcnn-joint", "mtcnn-original", "mtcnn-2026-12-05"]
    assert list_weights("aligner") == ["dcrn"] and list_weights("attributes") == ["mcfa"]
    assert [n for n in list_weights() if weights_info(n).default] == ["mtcnn", "dcrn", "mcfa"]
    code_defaults = [
        inspect.signature(part).parameters["weights"].default
        for part in (facecascade.FaceDetector, facecascade.FaceAligner, facecascade.AttributeClassifier)
    ]
    assert code_defaults == ["mtcnn", "dcrn", "mcfa"]  # the registry's flags say what the loaders do
    assert facecascade.list_weights is list_weights and facecascade.weights_info is weights_info
    with pytest.raises(KeyError, match="registered are mtcnn"):
        weights_info("retinaface")
    with pytest.raises(ValueError, match="unknown kind"):
        list_weights("segmenter")


def test_a_name_of_another_kind_is_refused_with_what_it_is():
    with pytest.raises(ValueError, match="'mtcnn' are detector weights, not aligner weights"):
        facecascade.FaceAligner("mtcnn")
    with pytest.raises(ValueError, match="'dcrn' are aligner weights, not attributes weights"):
        facecascade.AttributeClassifier("dcrn")


@pytest.fixture
def package_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped weights copied into a folder the registry reads instead of the package's."""
    folder = tmp_path / "weights"
    shutil.copytree(PACKAGED, folder)
    monkeypatch.setattr(registry, "PACKAGED", folder)
    return folder


def test_a_replaced_file_is_refused_before_it_is_read(package_copy: Path):
    # a valid checkpoint of the right kind under the wrong name: only the checksum can tell
    shutil.copyfile(package_copy / "mtcnn-joint.pt", package_copy / "mtcnn.pt")
    found = registry.weights_info("mtcnn-joint").sha256["mtcnn-joint.pt"][:8]
    expected = registry.weights_info("mtcnn").sha256["mtcnn.pt"][:8]
    with pytest.raises(WeightsIntegrityError, match=rf"'mtcnn': .*mtcnn\.pt has SHA-256 {found}.*expects {expected}"):
        facecascade.FaceDetector(weights="mtcnn")
    facecascade.FaceDetector(weights="mtcnn-joint")  # the others still load


@pytest.mark.parametrize("name", ["dcrn", "mcfa", "cascade-rcnn"])
def test_a_truncated_file_is_refused_for_every_loader(package_copy: Path, name: str):
    path = package_copy / f"{name}.pt"
    path.write_bytes(path.read_bytes()[:1000])
    load = {"dcrn": facecascade.FaceAligner, "mcfa": facecascade.AttributeClassifier}.get(name)
    with pytest.raises(WeightsIntegrityError, match="corrupt or was replaced"):
        load(name) if load else facecascade.FaceDetector(weights=name)


def test_a_missing_packaged_file_says_so(package_copy: Path):
    (package_copy / "mcfa.pt").unlink()
    with pytest.raises(FileNotFoundError, match="mcfa.pt is missing from the installed package"):
        facecascade.AttributeClassifier()


def test_own_checkpoints_load_without_a_checksum(tmp_path: Path):
    copy = tmp_path / "mine.pt"
    shutil.copyfile(PACKAGED / "mtcnn-joint.pt", copy)
    assert facecascade.FaceDetector(weights=copy).weights == copy
    with pytest.raises(FileNotFoundError, match="no aligner weights"):
        facecascade.FaceAligner(tmp_path / "gone.pt")
    with pytest.raises(ValueError, match="unknown weights 'gone'"):
        facecascade.FaceAligner("gone")


def test_the_hash_follows_a_rewritten_file(tmp_path: Path):
    path = tmp_path / "w.pt"
    path.write_bytes(b"one")
    first = registry.file_sha256(path)
    path.write_bytes(b"two")
    os.utime(path, ns=(1, 1))  # a new modification time, as any rewrite gives
    assert first == hashlib.sha256(b"one").hexdigest() != registry.file_sha256(path)


def test_cli_list_shows_every_name_with_sha256_and_card(capsys: pytest.CaptureFixture[str]):
    assert main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    for name in list_weights():
        info = weights_info(name)
        assert name in out and all(sha in out for sha in info.sha256.values())
        assert info.card is None or str(info.card_path) in out
    assert out.count(" ok ") == len(list_weights())
    assert main(["weights", "list", "--kind", "aligner", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["name"] == "dcrn" and entry["status"] == "ok" and entry["card"].endswith("MODEL_CARD_dcrn.md")


def test_cli_flags_a_mismatch_and_a_missing_reference(
    package_copy: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    (package_copy / "dcrn.pt").write_bytes(b"not the weights")
    monkeypatch.setattr(registry, "facenet_weights_dir", lambda: tmp_path / "no-facenet")
    assert main(["weights", "list"]) == 1
    table = capsys.readouterr()
    assert "SHA-256 mismatch for dcrn" in table.err
    assert any(line.startswith("dcrn ") and " MISMATCH " in line for line in table.out.splitlines())
    assert main(["weights", "list", "--json"]) == 1
    status = {entry["name"]: entry["status"] for entry in json.loads(capsys.readouterr().out)}
    assert status == {**dict.fromkeys(list_weights(), "ok"), "dcrn": "MISMATCH", "mtcnn-original": "missing"}
    assert main(["weights", "info", "dcrn"]) == 1


def test_cli_info(capsys: pytest.CaptureFixture[str]):
    assert main(["weights", "info", "mcfa"]) == 0
    out = capsys.readouterr().out
    assert "kind:          attributes" in out and "research use only" in out and "CelebA" in out
    assert main(["weights", "info", "cascade-rcnn", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "two-stage detector" and info["sha256"] == weights_info("cascade-rcnn").sha256
    assert main(["weights", "info", "nope"]) == 2
    assert "unknown weights 'nope'" in capsys.readouterr().err
