"""The installed package, not the checkout: the wheel built from this tree, installed (not
editable) with its declared dependencies into a fresh virtual environment, detects faces on a
shared photo from a folder outside the checkout, with the weights, model cards, registry and
native kernels it carries; a wheel built without a C compiler installs and runs the PyTorch path.

Slow (a fresh environment takes torch, ~1-2 minutes from a local wheel or pip's cache)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .shared_data import require

ROOT = Path(__file__).resolve().parents[1]
PHOTO = "dlib_faces/2008_002506.jpg"  # the README's photo: 3 faces
# The README's torch pins: the fresh environment gets the same builds as the user's.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
PROBE = (
    "import json, facecascade; from facecascade.ops import native; "
    "print(json.dumps({'file': facecascade.__file__, 'native': native.enabled(), "
    "'card': str(facecascade.weights_info('mtcnn').card_path)}))"
)

pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, (
        f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _build_wheel(out: Path, env: dict[str, str] | None = None) -> Path:
    """``pip wheel --no-deps .`` of the checkout, built from a copy so no build output lands in it."""
    source = out / "source"
    ignore = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__", "*.so", "site", "out", "runs")
    shutil.copytree(ROOT, source, ignore=ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."], cwd=source, env=env)
    (wheel,) = out.glob("facecascade-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(wheel, its venv's bin folder, a work folder outside the checkout)``."""
    tmp = tmp_path_factory.mktemp("wheel")
    wheel = _build_wheel(tmp / "native")
    _run([sys.executable, "-m", "venv", str(tmp / "venv")], cwd=tmp)
    bin_dir = tmp / "venv" / "bin"
    _run([str(bin_dir / "python"), "-m", "pip", "install", "-q", str(wheel), *TORCH], cwd=tmp)
    work = tmp / "work"
    work.mkdir()
    return wheel, bin_dir, work


def test_the_wheel_carries_weights_cards_registry_and_kernels(installed: tuple[Path, Path, Path]):
    wheel = installed[0]
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.name for p in (ROOT / "facecascade" / "weights").iterdir() if p.suffix in (".pt", ".md", ".json")}
    assert {f"facecascade/weights/{name}" for name in shipped} <= names
    kernels = [n for n in names if n.startswith("facecascade/ops/_native") and n.endswith(".so")]
    assert kernels if shutil.which("cc") or shutil.which("gcc") else not kernels
    assert not any(n.startswith("tests/") for n in names)


def test_installed_wheel_detects_from_outside_the_checkout(installed: tuple[Path, Path, Path]):
    _, bin_dir, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FACECASCADE_NATIVE")}
    probe = json.loads(_run([str(bin_dir / "python"), "-c", PROBE], cwd=work, env=env))
    site = (bin_dir.parent / "lib").resolve()
    assert Path(probe["file"]).resolve().is_relative_to(site), probe  # not the checkout
    assert Path(probe["card"]).is_file() and Path(probe["card"]).resolve().is_relative_to(site)
    assert probe["native"] == bool(shutil.which("cc") or shutil.which("gcc"))
    _run([str(bin_dir / "facecascade"), "detect", str(require(PHOTO)), "--json", "faces.json", "-q"], cwd=work, env=env)
    faces = json.loads((work / "faces.json").read_text())["2008_002506.jpg"]
    assert len(faces) == 3 and all(len(f["landmarks"]) == 5 for f in faces)
    listing = _run([str(bin_dir / "facecascade"), "weights", "list", "--json"], cwd=work, env=env)
    status = {entry["name"]: entry["status"] for entry in json.loads(listing)}
    assert all(status[name] == "ok" for name in status if name != "mtcnn-original")  # sha256 of the wheel's files


def test_a_wheel_built_without_a_c_compiler_runs_the_pytorch_path(installed: tuple[Path, Path, Path]):
    _, bin_dir, work = installed
    out = work.parent / "no-compiler"
    env = {**os.environ, "CC": str(out / "no-such-cc"), "LDSHARED": str(out / "no-such-cc")}
    wheel = _build_wheel(out, env)
    assert not [n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".so")]
    python = str(bin_dir / "python")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)], cwd=work)
    probe = json.loads(_run([python, "-c", PROBE], cwd=work))
    assert probe["native"] is False
    _run([str(bin_dir / "facecascade"), "detect", str(require(PHOTO)), "--json", "plain.json", "-q"], cwd=work)
    assert len(json.loads((work / "plain.json").read_text())["2008_002506.jpg"]) == 3
