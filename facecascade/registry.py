"""One registry of named weights (timm's ``list_models`` / ``create_model`` idea, for weights).

The table is ``facecascade/weights/registry.json``, shipped in the package: for every name its
kind (``detector``, ``two-stage detector``, ``aligner``, ``attributes``), its file(s) with their
SHA-256, model card, training data, licence and headline metrics. Every loader resolves a name
through `resolve_weights`, which checks each file's SHA-256 before the file is read: a corrupt or
replaced weights file is refused with `WeightsIntegrityError`, never loaded silently.

    >>> import facecascade
    >>> facecascade.list_weights()                  # every name, shipped ones and "mtcnn-original"
    >>> facecascade.weights_info("mtcnn").sha256    # {"mtcnn.pt": "2508b3df..."}
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

PACKAGED = Path(__file__).resolve().parent / "weights"  # weights shipped inside the package
REGISTRY_FILE = PACKAGED / "registry.json"
KINDS = ("detector", "two-stage detector", "aligner", "attributes")
FACENET_INSTALL_HINT = (
    "install it with `pip install --no-deps facenet-pytorch==2.6.0` "
    "(--no-deps: its pins would downgrade torch and numpy)"
)


class WeightsIntegrityError(ValueError):
    """A named weights file whose bytes do not have the registry's SHA-256."""


@dataclass(frozen=True)
class WeightsInfo:
    """One entry of the registry (`weights_info`)."""

    name: str
    kind: str  # one of KINDS
    architecture: str
    source: str  # "package" (inside facecascade) or "facenet-pytorch" (an installed package)
    sha256: dict[str, str]  # file name -> expected SHA-256 (hex), in loading order
    card: str | None  # model card file name, next to the weights
    default: bool  # the default weights of their kind
    description: str
    training_data: str
    licence: str
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_source: str = ""

    @property
    def folder(self) -> Path:
        """Where the files are: the package's weights folder, or facenet-pytorch's data folder."""
        return PACKAGED if self.source == "package" else facenet_weights_dir()

    @property
    def files(self) -> list[Path]:
        """The weights files, in loading order (existing or not)."""
        return [self.folder / name for name in self.sha256]

    @property
    def card_path(self) -> Path | None:
        """The model card's path in the installed package (``None`` without a card)."""
        return None if self.card is None else PACKAGED / self.card

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (``facecascade weights info NAME --json``): the fields, with the model
        card as its path in the installed package."""
        out = asdict(self)
        out["card"] = None if self.card_path is None else str(self.card_path)
        return out


def _entry(name: str, raw: dict[str, Any]) -> WeightsInfo:
    if raw.get("kind") not in KINDS:
        raise ValueError(f"{REGISTRY_FILE}: weights {name!r} have kind {raw.get('kind')!r}, not one of {KINDS}")
    fields = {k: v for k, v in raw.items() if k != "files"}
    return WeightsInfo(name=name, sha256=dict(raw["files"]), **fields)


@cache
def _registry() -> dict[str, WeightsInfo]:
    table = json.loads(REGISTRY_FILE.read_text(encoding="utf-8"))
    return {name: _entry(name, raw) for name, raw in table["weights"].items()}


def list_weights(kind: str | None = None) -> list[str]:
    """The registered weights names, in the registry's order; only those of ``kind`` if given."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    return [name for name, info in _registry().items() if kind is None or info.kind == kind]


def is_registered(weights: str | os.PathLike[str]) -> bool:
    """Whether ``weights`` is a registry name (not a file path)."""
    return isinstance(weights, str) and weights in _registry()


def weights_info(name: str) -> WeightsInfo:
    """The registry entry of ``name``; ``KeyError`` listing the known names for another."""
    try:
        return _registry()[name]
    except KeyError:
        raise KeyError(f"unknown weights {name!r}: registered are {', '.join(_registry())}") from None


def facenet_weights_dir() -> Path:
    """Folder holding ``pnet.pt``, ``rnet.pt``, ``onet.pt`` inside the installed facenet-pytorch."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"weights 'mtcnn-original' need the facenet-pytorch package, which is not installed: {FACENET_INSTALL_HINT}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, remembered per (path, size, modification time)."""
    stat = path.stat()
    return _sha256_of(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@cache
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_files(name: str) -> list[Path]:
    """The files of the registered weights ``name``, each checked against its SHA-256.

    ``FileNotFoundError`` for a missing file, `WeightsIntegrityError` for one whose bytes differ."""
    info = weights_info(name)
    for path, expected in zip(info.files, info.sha256.values()):
        if not path.is_file():
            where = "the installed package" if info.source == "package" else f"facenet-pytorch ({FACENET_INSTALL_HINT})"
            raise FileNotFoundError(f"weights {name!r}: {path} is missing from {where}")
        actual = file_sha256(path)
        if actual != expected:
            raise WeightsIntegrityError(
                f"weights {name!r}: {path} has SHA-256 {actual}, but the registry ({REGISTRY_FILE.name}) "
                f"expects {expected}: the file is corrupt or was replaced; reinstall facecascade"
                + ("" if info.source == "package" else " and facenet-pytorch==2.6.0")
            )
    return info.files


def resolve_weights(weights: str | os.PathLike[str], kind: str) -> list[Path]:
    """The file(s) behind ``weights`` for a loader of ``kind``: a registry name's verified files
    (`verified_files`), or a path to the user's own checkpoint (not checksummed).

    A registry name of another kind, or a name that is neither registered nor a path, is a
    ``ValueError`` that lists the names of ``kind``; a missing ``.pt`` file a ``FileNotFoundError``."""
    if is_registered(weights):
        name = str(weights)
        info = weights_info(name)
        if info.kind != kind:
            others = ", ".join(list_weights(kind))
            raise ValueError(f"weights {name!r} are {info.kind} weights, not {kind} weights (those are: {others})")
        return verified_files(name)
    path = Path(weights)
    if path.is_file():
        return [path]
    known = ", ".join(list_weights(kind))
    if path.suffix in (".pt", ".pth") or len(path.parts) > 1:  # meant as a file
        raise FileNotFoundError(
            f"no {kind} weights {os.fspath(weights)!r}: not a file, nor a registered name ({known})"
        )
    raise ValueError(f"unknown weights {os.fspath(weights)!r}: use one of {known} or a checkpoint path")
