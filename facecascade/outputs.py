"""Result files that are never half-written: JSON, JSON lines, CSV (one row per face), COCO,
Parquet (one row per face or failed input; needs pyarrow, the ``ray`` extra).

Every writer fills a temporary file beside its target and renames it into place on `commit`;
an interrupted or crashed run leaves the target untouched (or absent) and no temporary behind.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .structures import LANDMARK_NAMES_5, Faces


@dataclass
class Record:
    """One analysed image, or one frame of a video.

    Attributes:
        source: the file as named on the command line or found in a folder.
        frame: frame index in a video; ``None`` for a still image.
        width, height: image size in pixels (boxes are in these pixels).
        faces: what was found.
    """

    source: str
    frame: int | None
    width: int
    height: int
    faces: Faces

    def header(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.source}
        if self.frame is not None:
            out["frame"] = self.frame
        out.update(width=self.width, height=self.height)
        return out


def _file_mode() -> int:
    """What ``open()`` would give a new file: 0o666 less the umask (``mkstemp`` gives 0o600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


class AtomicFile:
    """A file written under a temporary name beside ``path`` and renamed into place by `commit`.

    Args:
        path: the target; ``"-"`` writes text to standard output instead (nothing to rename).
        binary: open in ``"wb"`` mode (``file`` takes bytes) instead of UTF-8 text.
        newline: passed to `open` for text files (``""`` for the csv module).
    """

    def __init__(self, path: str | os.PathLike, binary: bool = False, newline: str | None = None):
        self.path = None if os.fspath(path) == "-" else Path(path)
        self._tmp: str | None = None
        if self.path is None:
            self.file: IO = sys.stdout.buffer if binary else sys.stdout
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self.file = open(fd, "wb") if binary else open(fd, "w", encoding="utf-8", newline=newline)

    def commit(self) -> None:
        """Close and rename into place, with the permissions a plain ``open()`` would give."""
        if self._tmp is None:
            self.file.flush()
            return
        self.file.close()
        assert self.path is not None  # a temporary file has a target
        os.chmod(self._tmp, _file_mode())
        os.replace(self._tmp, self.path)
        self._tmp = None

    def discard(self) -> None:
        """Close and delete the temporary file; the target is left as it was."""
        if self._tmp is not None:
            self.file.close()
            Path(self._tmp).unlink(missing_ok=True)
            self._tmp = None

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def write_json_atomic(path: str | os.PathLike, payload: object) -> None:
    """Write ``payload`` as indented JSON to ``path`` (``"-"``: standard output), atomically."""
    with AtomicFile(path) as out:
        json.dump(payload, out.file, indent=1)
        out.file.write("\n")


def record_json(record: Record) -> dict[str, Any]:
    """The JSON object of one image or frame, ``{"file", ["frame",] "width", "height", "faces":
    [...]}`` with each face as `Faces.to_dicts` gives it: a line of ``facecascade analyze --json``
    and the body of the service's answer (`facecascade.serve.schema.ImageResult` documents it)."""
    line = record.header()
    line["faces"] = record.faces.to_dicts()
    return line


class JsonLinesWriter(AtomicFile):
    """One `record_json` object per image or frame, one per line."""

    def write(self, record: Record) -> None:
        self.file.write(json.dumps(record_json(record)) + "\n")


class CsvWriter(AtomicFile):
    """A flat table, one row per face: file, frame, face, score, x1..y2, one x/y pair per
    landmark, one column per attribute. Images without faces add no row."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, newline="")
        self._csv = csv.writer(self.file)
        self._columns: list[str] | None = None

    @staticmethod
    def columns(faces: Faces) -> list[str]:
        k = faces.landmarks.shape[1]
        names = LANDMARK_NAMES_5 if k == 5 else tuple(f"point{i}" for i in range(k))
        points = [f"{name}_{axis}" for name in names for axis in "xy"]
        return ["file", "frame", "face", "score", "x1", "y1", "x2", "y2", *points, *faces.attribute_names]

    def write(self, record: Record) -> None:
        faces = record.faces
        if self._columns is None:
            self._columns = self.columns(faces)
            self._csv.writerow(self._columns)
        frame = "" if record.frame is None else record.frame
        for i in range(len(faces)):
            values = [*faces.boxes[i], *faces.landmarks[i].reshape(-1), *faces.attributes[i]]
            self._csv.writerow([record.source, frame, i, f"{faces.scores[i]:.6g}", *(f"{v:.6g}" for v in values)])


class CocoWriter(AtomicFile):
    """A COCO-format file (``images``, ``annotations`` with ``score``, ``categories``) that
    ``pycocotools.coco.COCO`` loads; its ``annotations`` list is also a valid results list for
    ``COCO.loadRes``. Boxes are ``[x, y, w, h]``; 5 landmarks become COCO keypoints."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._images: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._keypoints = 0

    def write(self, record: Record) -> None:
        image_id = len(self._images) + 1
        entry: dict[str, Any] = {
            "id": image_id,
            "file_name": record.source,
            "width": record.width,
            "height": record.height,
        }
        if record.frame is not None:
            entry["frame"] = record.frame
        self._images.append(entry)
        faces = record.faces
        self._keypoints = max(self._keypoints, faces.landmarks.shape[1])
        for i in range(len(faces)):
            self._annotations.append(self._annotation(faces, i, image_id))

    def _annotation(self, faces: Faces, i: int, image_id: int) -> dict[str, Any]:
        x1, y1, x2, y2 = (float(v) for v in faces.boxes[i])
        ann: dict[str, Any] = {
            "id": len(self._annotations) + 1,
            "image_id": image_id,
            "category_id": 1,
            "bbox": [x1, y1, x2 - x1, y2 - y1],
            "area": (x2 - x1) * (y2 - y1),
            "iscrowd": 0,
            "score": float(faces.scores[i]),
        }
        if faces.landmarks.shape[1]:
            ann["keypoints"] = [v for x, y in faces.landmarks[i] for v in (float(x), float(y), 2)]
            ann["num_keypoints"] = int(faces.landmarks.shape[1])
        if faces.attribute_names:
            ann["attributes"] = {n: float(p) for n, p in zip(faces.attribute_names, faces.attributes[i])}
        return ann

    def commit(self) -> None:
        category: dict[str, Any] = {"id": 1, "name": "face", "supercategory": "face"}
        if self._keypoints:
            category["keypoints"] = list(
                LANDMARK_NAMES_5 if self._keypoints == 5 else (f"point{i}" for i in range(self._keypoints))
            )
            category["skeleton"] = []
        json.dump({"images": self._images, "annotations": self._annotations, "categories": [category]}, self.file)
        self.file.write("\n")
        super().commit()


PARQUET_MISSING = 'Parquet output needs pyarrow: pip install "facecascade[ray]"'


def _pyarrow() -> Any:
    """The ``pyarrow`` module (with ``pyarrow.parquet`` loaded); ``ImportError`` naming the extra."""
    try:
        import pyarrow
        import pyarrow.parquet  # loads the submodule
    except ImportError as exc:
        raise ImportError(PARQUET_MISSING) from exc
    return pyarrow


def parquet_schema() -> Any:
    """The ``pyarrow.Schema`` of `ParquetWriter`'s rows (docs/ray.md, "Parquet schema")."""
    pa = _pyarrow()
    return pa.schema(
        [
            ("file", pa.string()),
            ("frame", pa.int32()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("face", pa.int32()),
            ("box", pa.list_(pa.float32(), 4)),
            ("score", pa.float32()),
            ("landmarks", pa.list_(pa.list_(pa.float32(), 2))),
            ("iterations", pa.int32()),
            ("attributes", pa.map_(pa.string(), pa.float32())),
            ("error", pa.string()),
        ]
    )


def face_rows(record: Record) -> list[dict[str, Any]]:
    """`ParquetWriter`'s rows for one image or frame: one per face, none without faces."""
    faces, rows = record.faces, []
    for i in range(len(faces)):
        rows.append(
            {
                **record.header(),
                "frame": record.frame,
                "face": i,
                "box": faces.boxes[i].tolist(),
                "score": float(faces.scores[i]),
                "landmarks": faces.landmarks[i].tolist() if faces.landmarks.shape[1] else None,
                "iterations": None if faces.iterations is None else int(faces.iterations[i]),
                "attributes": list(zip(faces.attribute_names, faces.attributes[i].tolist())) or None,
                "error": None,
            }
        )
    return rows


def write_failure(writers: Iterable[object], source: str, message: str, frame: int | None = None) -> None:
    """The row of an input that could not be read, in each of ``writers`` that keeps such rows
    (`ParquetWriter`; the other formats list analysed images only)."""
    for writer in writers:
        if isinstance(writer, ParquetWriter):
            writer.write_error(source, message, frame)


class ParquetWriter(AtomicFile):
    """A Parquet file, one row per face (`face_rows`) and one per failed input (`write_error`:
    ``file`` and ``error`` set, every other column null). Images without faces add no row. Rows
    are written in row groups of ``row_group_size`` as they come, so memory stays bounded.

    Raises:
        ImportError: pyarrow is not installed (the message names ``pip install "facecascade[ray]"``).
    """

    def __init__(self, path: str | os.PathLike, row_group_size: int = 65536):
        self._pa = _pyarrow()  # before the temporary file exists
        super().__init__(path, binary=True)
        self.schema = parquet_schema()
        self.row_group_size = row_group_size
        self._rows: list[dict[str, Any]] = []
        self._parquet = self._pa.parquet.ParquetWriter(self.file, self.schema)

    def write(self, record: Record) -> None:
        self._add(face_rows(record))

    def write_error(self, source: str, message: str, frame: int | None = None) -> None:
        """The row of an input that could not be read."""
        self._add([{"file": source, "frame": frame, "error": message}])

    def _add(self, rows: list[dict[str, Any]]) -> None:
        self._rows.extend(rows)
        if len(self._rows) >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._parquet.write_table(self._pa.Table.from_pylist(self._rows, schema=self.schema))
            self._rows = []

    def commit(self) -> None:
        self._flush()
        self._parquet.close()  # the footer: the file is complete
        super().commit()

    def discard(self) -> None:
        self._rows = []
        with contextlib.suppress(OSError, ValueError):  # pyarrow's IO and invalid-state errors
            self._parquet.close()  # before the file goes (else it closes into a closed file later)
        super().discard()
