"""Which faces count in the WIDER FACE protocol (`wider_protocol`): its *settings*.

* `official_settings`: the official easy / medium / hard files (``wider_easy_val.mat``, ...), each
  listing per image the 1-based indices of the faces it keeps (``gt_list``). Exactly as the
  official tool, the setting alone decides: a face it does not keep is an ignore region.
* `HeightBuckets` (without setting files): faces at least 10, 20 and 50 pixels high (``y2 - y1``)
  that the annotations do not flag (WIDER ``invalid``, empty boxes); every other face is an ignore
  region. These approximate the difficulty levels by size only; the numbers are not the
  official easy / medium / hard ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.records import FaceRecord

OFFICIAL_SETTINGS = ("easy", "medium", "hard")
BUCKETS_KIND = "height buckets (no WIDER setting files given)"


class WiderSettings(ABC):
    """Settings of the WIDER protocol: a ``key`` (JSON) and ``label`` (tables) each, in order, and
    per image which faces count in each (`counted`)."""

    @property
    @abstractmethod
    def kind(self) -> str:
        """What the settings are, for the reports (e.g. `BUCKETS_KIND`)."""

    @property
    @abstractmethod
    def keys(self) -> tuple[str, ...]:
        """The settings' names in JSON reports, in order."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The settings' names in tables and plots (the keys unless overridden)."""
        return self.keys

    @abstractmethod
    def counted(self, record: FaceRecord) -> np.ndarray:
        """``(S, N)`` bool: the faces of ``record`` that count in each setting."""

    def check(self, records: Sequence[FaceRecord]) -> None:
        """Raise ``ValueError`` (naming the image) if a record does not fit the settings."""
        for record in records:
            self.counted(record)


@dataclass(frozen=True)
class HeightBuckets(WiderSettings):
    """Faces at least ``min_heights`` pixels high and not flagged ignored count."""

    min_heights: tuple[float, ...] = (10.0, 20.0, 50.0)

    @property
    def kind(self) -> str:
        return BUCKETS_KIND

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f"height_{h:g}" for h in self.min_heights)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(f"≥{h:g} px" for h in self.min_heights)

    def counted(self, record: FaceRecord) -> np.ndarray:
        heights = record.boxes[:, 3] - record.boxes[:, 1]
        masks = [~record.ignore & (heights >= h) for h in self.min_heights]
        return np.asarray(masks, bool).reshape(len(self.min_heights), len(record))


@dataclass(frozen=True)
class OfficialSettings(WiderSettings):
    """The faces kept by the official setting files, looked up by ``(event folder, file stem)``."""

    folder: Path
    kept: dict[str, dict[tuple[str, str], np.ndarray]] = field(repr=False)

    @property
    def kind(self) -> str:
        return f"WIDER setting files easy/medium/hard ({self.folder})"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.kept)

    def counted(self, record: FaceRecord) -> np.ndarray:
        name = (record.image.parent.name, record.image.stem)
        masks = np.zeros((len(self.kept), len(record)), bool)
        for s, (key, setting) in enumerate(self.kept.items()):
            if name not in setting:
                raise ValueError(f"{record.image}: not in the WIDER setting file of {key} (WIDER val images only)")
            indices = setting[name]
            if len(indices) and indices.max() >= len(record):
                faces = f"face {indices.max() + 1}, the annotations have {len(record)}"
                raise ValueError(f"{record.image}: the {key} setting keeps {faces}")
            masks[s, indices] = True
        return masks


def official_settings(folder: str | Path) -> OfficialSettings:
    """`OfficialSettings` from ``folder/wider_{easy,medium,hard}_val.mat`` (needs scipy); the
    images are named by ``folder/wider_face_val.mat`` when the setting files do not name them."""
    from ..data.wider import read_wider_setting

    folder = Path(folder)
    files = {name: folder / f"wider_{name}_val.mat" for name in OFFICIAL_SETTINGS}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"WIDER setting files not found: {', '.join(missing)}")
    names = folder / "wider_face_val.mat"
    return OfficialSettings(folder, {name: read_wider_setting(path, names) for name, path in files.items()})
