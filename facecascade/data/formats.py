"""One entry point for every dataset format: ``read_dataset(fmt, annotations, images)``.

==========  ==================================================  ==========================================
format      ``annotations``                                     ``images`` when not given
==========  ==================================================  ==========================================
voc         folder of per-image ``*.xml``                       ``../JPEGImages`` or ``../images``, else
                                                                the annotations folder
caltech     ``WebFaces_GroundThruth.txt``                       ``images/`` beside it, else its folder
imglab      dlib imglab ``.xml``                                the xml's folder
coco        ``.../annotations/instances_<split>.json``          ``.../<split>``, else ``images/`` beside
                                                                the json, else its folder
wider       ``.../wider_face_<split>_bbx_gt.txt`` or            ``.../WIDER_<split>/images``, else
            ``wider_face_<split>.mat`` (scipy)                  ``images/`` beside it, else its folder
fddb        a ``*ellipseList.txt`` fold or a folder of them     ``originalPics`` beside the folds' folder,
                                                                else the folder above them
celeba      CelebA folder, or its landmarks list file           ``img_align_celeba*`` in the CelebA folder
mtfl        MTFL list (``lfw_5590_landmarks.txt``, ...)         the list's folder
==========  ==================================================  ==========================================

Keyword arguments go to the reader: ``classes`` (voc), ``categories`` (coco), ``box_transform``
(caltech, celeba, mtfl), ``attributes_file``, ``scale`` (celeba).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .records import FaceRecord

FORMATS = ("voc", "caltech", "imglab", "coco", "wider", "fddb", "celeba", "mtfl")


def _first_dir(*candidates: Path) -> Path:
    """The first existing folder of ``candidates``, else the last one."""
    return next((c for c in candidates if c.is_dir()), candidates[-1])


def default_images(fmt: str, annotations: str | Path) -> Path | None:
    """Where ``fmt``'s images are by default in its official layout (see the module docstring);
    ``None`` where the reader finds them itself (imglab, celeba, mtfl)."""
    annotations = Path(annotations)
    folder = annotations if annotations.is_dir() else annotations.parent
    if fmt == "voc":
        return _first_dir(folder.parent / "JPEGImages", folder.parent / "images", folder)
    if fmt == "caltech":
        return _first_dir(folder / "images", folder)
    if fmt == "coco":
        split = annotations.stem.split("_", 1)[-1]  # instances_val2017 -> val2017
        return _first_dir(folder.parent / split, folder / split, folder / "images", folder)
    if fmt == "wider":
        found = re.search(r"_(train|val|test)(?:_|$)", annotations.stem)  # ..._val_bbx_gt.txt, ..._val.mat
        split = found.group(1) if found else "test"
        return _first_dir(folder.parent / f"WIDER_{split}" / "images", folder / "images", folder)
    if fmt == "fddb":
        return _first_dir(folder.parent / "originalPics", folder / "originalPics", folder.parent)
    return None


def _voc(annotations: Path, images: Path, **kwargs: Any) -> list[FaceRecord]:
    from .voc import read_voc

    return read_voc(annotations, images, **kwargs)


def _caltech(annotations: Path, images: Path, box_transform=None, transform=None) -> list[FaceRecord]:
    from . import caltech  # CALTECH_BOXES looked up now, so refitted coefficients apply

    transform = box_transform or transform or caltech.CALTECH_BOXES
    return caltech.read_caltech(annotations, images, transform=transform)


def _imglab(annotations: Path, images: Path | None, **kwargs: Any) -> list[FaceRecord]:
    from .imglab import read_imglab

    return read_imglab(annotations, images, **kwargs)


def _coco(annotations: Path, images: Path, **kwargs: Any) -> list[FaceRecord]:
    from .coco import read_coco

    return read_coco(annotations, images, **kwargs)


def _wider(annotations: Path, images: Path, **kwargs: Any) -> list[FaceRecord]:
    from .wider import read_wider

    return read_wider(annotations, images, **kwargs)


def _fddb(annotations: Path, images: Path, **kwargs: Any) -> list[FaceRecord]:
    from .fddb import read_fddb

    return read_fddb(annotations, images, **kwargs)


def _celeba(annotations: Path, images: Path | None, **kwargs: Any) -> list[FaceRecord]:
    from .celeba import read_celeba

    if annotations.is_dir():
        return read_celeba(annotations, images_dir=images, **kwargs)
    return read_celeba(annotations.parent, landmarks_file=annotations, images_dir=images, **kwargs)


def _mtfl(annotations: Path, images: Path | None, **kwargs: Any) -> list[FaceRecord]:
    from .mtfl import read_mtfl

    return read_mtfl(annotations, images, **kwargs)


_READERS: dict[str, Callable[..., list[FaceRecord]]] = {
    "voc": _voc,
    "caltech": _caltech,
    "imglab": _imglab,
    "coco": _coco,
    "wider": _wider,
    "fddb": _fddb,
    "celeba": _celeba,
    "mtfl": _mtfl,
}


def read_dataset(
    fmt: str, annotations: str | Path, images: str | Path | None = None, **kwargs: Any
) -> list[FaceRecord]:
    """Records of a dataset in format ``fmt`` (one of `FORMATS`; see the module docstring for what
    ``annotations`` and ``images`` are per format). Extra keyword arguments go to the reader.

    ``images=None`` means the format's usual place (`default_images`). Raises ``ValueError`` for an
    unknown format and ``FileNotFoundError`` naming ``annotations``, or a given ``images`` folder,
    when it does not exist.
    """
    key = str(fmt).lower()
    if key not in _READERS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")
    annotations = Path(annotations)
    if not annotations.exists():
        raise FileNotFoundError(f"{key} annotations {annotations} not found")
    if images is None:
        images = default_images(key, annotations)
    else:
        images = Path(images)
        if not images.is_dir():
            raise FileNotFoundError(f"{key} images folder {images} not found")
    return _READERS[key](annotations, images, **kwargs)
