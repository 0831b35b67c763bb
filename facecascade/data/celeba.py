"""CelebA aligned faces: 5 landmarks and 40 binary attributes per image, one face per image.

Official layout (``Anno/`` and ``Img/`` sub-folders are also searched)::

    root/list_landmarks_align_celeba.txt   count, header "lefteye_x lefteye_y ... rightmouth_y",
                                           then "000001.jpg 69 109 106 113 ..." per image
    root/list_attr_celeba.txt              count, the 40 attribute names, then "000001.jpg -1 1 ..."
    root/img_align_celeba/000001.jpg       178 x 218 images

The Kaggle copy's ``.csv`` variants (a header ``image_id,lefteye_x,...``, no count line) are read
too. The landmarks are for the 178 x 218 aligned images; copies stored smaller (the shared copy is
89 x 109, in ``img_align_celeba_89x109/``) need them scaled: ``scale=None`` measures it from the
first image (its width / 178). CelebA has no boxes: they are derived from the landmarks with a
`BoxFromPoints`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .boxfit import BoxFromPoints
from .records import NUM_LANDMARKS, FaceRecord

CELEBA_SIZE = (178, 218)  # width, height of the aligned images the landmarks refer to

# The 40 attribute names in the order of the official list_attr_celeba.txt header; records'
# ``attributes`` columns follow this order whatever the order of the file's columns.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow",
    "Arched_Eyebrows",
    "Attractive",
    "Bags_Under_Eyes",
    "Bald",
    "Bangs",
    "Big_Lips",
    "Big_Nose",
    "Black_Hair",
    "Blond_Hair",
    "Blurry",
    "Brown_Hair",
    "Bushy_Eyebrows",
    "Chubby",
    "Double_Chin",
    "Eyeglasses",
    "Goatee",
    "Gray_Hair",
    "Heavy_Makeup",
    "High_Cheekbones",
    "Male",
    "Mouth_Slightly_Open",
    "Mustache",
    "Narrow_Eyes",
    "No_Beard",
    "Oval_Face",
    "Pale_Skin",
    "Pointy_Nose",
    "Receding_Hairline",
    "Rosy_Cheeks",
    "Sideburns",
    "Smiling",
    "Straight_Hair",
    "Wavy_Hair",
    "Wearing_Earrings",
    "Wearing_Hat",
    "Wearing_Lipstick",
    "Wearing_Necklace",
    "Wearing_Necktie",
    "Young",
)

# Header names of the 5 points, in FaceRecord order (CelebA's "left" eye is the image-left one).
CELEBA_POINTS = ("lefteye", "righteye", "nose", "leftmouth", "rightmouth")

_NAME_COLUMNS = {"", "image_id", "image", "image_name", "filename", "file_name", "file", "name"}


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, str, list[str]]]]:
    """Columns and ``(line number, image name, values)`` rows of a CelebA list (.txt or .csv)."""
    if not path.is_file():
        raise FileNotFoundError(f"CelebA list {path} not found")
    with open(path, encoding="utf-8") as f:
        lines = [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path}: empty file")
    count = None
    if lines[0][1].isdigit():  # the official .txt starts with the number of images
        count = int(lines[0][1])
        lines = lines[1:]
    if not lines:
        raise ValueError(f"{path}: no header line")
    sep = "," if "," in lines[0][1] else None
    columns = [c.strip() for c in lines[0][1].split(sep)]
    if columns[0].lower() in _NAME_COLUMNS:
        columns = columns[1:]
    rows = []
    for number, line in lines[1:]:
        fields = [v.strip() for v in line.split(sep)]
        if len(fields) != len(columns) + 1:
            raise ValueError(
                f"{path}:{number}: expected an image name and {len(columns)} values, got {len(fields)} fields"
            )
        rows.append((number, fields[0], fields[1:]))
    if count is not None and count != len(rows):
        raise ValueError(f"{path}: the first line says {count} images but the file lists {len(rows)}")
    return columns, rows


def read_celeba_landmarks(path: Path) -> dict[str, np.ndarray]:
    """``{image name: (5, 2) float32}`` points from ``list_landmarks_align_celeba.txt`` (or .csv), in
    the file's coordinates (178 x 218 for the aligned set)."""
    path = Path(path)
    columns, rows = _read_table(path)
    try:
        order = [columns.index(f"{p}_{axis}") for p in CELEBA_POINTS for axis in "xy"]
    except ValueError:
        raise ValueError(
            f"{path}: header {columns} lacks some of {[f'{p}_{a}' for p in CELEBA_POINTS for a in 'xy']}"
        ) from None
    points = {}
    for number, name, values in rows:
        try:
            xy = [float(values[i]) for i in order]
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from exc
        if name in points:
            raise ValueError(f"{path}:{number}: image {name} is listed twice")
        points[name] = np.asarray(xy, np.float32).reshape(NUM_LANDMARKS, 2)
    return points


def read_celeba_attributes(path: Path) -> dict[str, np.ndarray]:
    """``{image name: (40,) int8}`` values in {-1, 1} from ``list_attr_celeba.txt`` (or .csv), columns
    in `CELEBA_ATTRIBUTES` order (the file's header names them; a missing name is an error)."""
    path = Path(path)
    columns, rows = _read_table(path)
    missing = [a for a in CELEBA_ATTRIBUTES if a not in columns]
    if missing:
        raise ValueError(f"{path}: header lacks the attributes {missing}")
    order = [columns.index(a) for a in CELEBA_ATTRIBUTES]
    attributes = {}
    for number, name, values in rows:
        picked = [values[i] for i in order]
        if any(v not in ("1", "-1") for v in picked):
            raise ValueError(f"{path}:{number}: attribute values must be 1 or -1")
        attributes[name] = np.asarray([int(v) for v in picked], np.int8)
    return attributes


def _find(root: Path, names: list[str]) -> Path | None:
    for folder in (root, root / "Anno"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def _images_dir(root: Path, first: str) -> Path:
    """The folder holding ``first``: ``img_align_celeba`` (also under ``Img/`` or nested twice, as in
    the Kaggle copy), any other ``img_align_celeba*`` folder, or ``root`` itself; failing that, the
    first of those folders that exists."""
    candidates = [
        root / "img_align_celeba",
        root / "img_align_celeba" / "img_align_celeba",
        root / "Img" / "img_align_celeba",
    ]
    for parent in (root, root / "Img"):
        if parent.is_dir():
            candidates += sorted(p for p in parent.glob("img_align_celeba*") if p.is_dir())
    candidates.append(root)
    for folder in candidates:
        if (folder / first).is_file():
            return folder
    for folder in candidates[:-1]:  # a partial copy without the first image
        if folder.is_dir():
            return folder
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise FileNotFoundError(f"CelebA image {first} not found in any of {tried}; pass images_dir")


def _measure_scale(image: Path) -> float:
    from PIL import Image

    with Image.open(image) as img:
        width, height = img.size
    scale = width / CELEBA_SIZE[0]
    if abs(height - CELEBA_SIZE[1] * scale) > 1.0:
        raise ValueError(
            f"{image}: {width} x {height} is not a scaled 178 x 218 aligned CelebA image; pass scale explicitly"
        )
    return scale


def read_celeba(
    root: Path,
    landmarks_file: Path | None = None,
    attributes_file: Path | None = None,
    images_dir: Path | None = None,
    scale: float | None = None,
    box_transform: BoxFromPoints | None = None,
) -> list[FaceRecord]:
    """One record (one face) per image of the landmarks list, in file order.

    Args:
        root: the CelebA folder; the lists and images are looked up there unless given.
        landmarks_file: default ``list_landmarks_align_celeba.txt`` (or ``.csv``) in ``root`` or
            ``root/Anno``.
        attributes_file: default ``list_attr_celeba.txt`` (or ``.csv``) there; records get
            ``attributes (1, 40)`` int8 in `CELEBA_ATTRIBUTES` order, or ``None`` when no such file
            exists (an explicitly given file must exist).
        images_dir: default: the folder of ``img_align_celeba*`` (see `_images_dir`) that holds the
            first listed image.
        scale: image size / 178 x 218, applied to the landmarks. ``None``: measured on the first
            image (its width / 178; 0.5 for the shared 89 x 109 copy), assuming every image is stored
            at that size. Pass ``scale=1`` for lists that are not for the aligned images.
        box_transform: points to box; default `facecascade.data.caltech.CALTECH_BOXES`, looked up at
            call time so that refitted coefficients apply.
    """
    root = Path(root)
    if landmarks_file is None:
        landmarks_file = _find(root, ["list_landmarks_align_celeba.txt", "list_landmarks_align_celeba.csv"])
        if landmarks_file is None:
            raise FileNotFoundError(f"no list_landmarks_align_celeba.txt or .csv in {root} or {root / 'Anno'}")
    points = read_celeba_landmarks(Path(landmarks_file))
    if not points:
        return []
    if attributes_file is None:
        attributes_file = _find(root, ["list_attr_celeba.txt", "list_attr_celeba.csv"])
    attributes = None if attributes_file is None else read_celeba_attributes(Path(attributes_file))
    names = list(points)
    images_dir = _images_dir(root, names[0]) if images_dir is None else Path(images_dir)
    if scale is None:
        if not (images_dir / names[0]).is_file():
            raise FileNotFoundError(f"CelebA image {images_dir / names[0]} not found (needed to measure the scale)")
        scale = _measure_scale(images_dir / names[0])
    if box_transform is None:
        from . import caltech

        box_transform = caltech.CALTECH_BOXES
    landmarks = np.stack([points[n] for n in names]) * np.float32(scale)
    boxes = box_transform.from_landmarks(landmarks)
    records = []
    for i, name in enumerate(names):
        row = None
        if attributes is not None:
            if name not in attributes:
                raise ValueError(f"{attributes_file}: no attributes for image {name}")
            row = attributes[name][None]
        records.append(
            FaceRecord(images_dir / name, boxes[i : i + 1], landmarks[i : i + 1], attributes=row, source="celeba")
        )
    return records
