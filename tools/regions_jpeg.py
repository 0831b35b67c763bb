"""Pack the cached DCRN training crops (``regions_<split>.npz``) as JPEGs, and unpack them.

Used to carry the crops to a rented GPU machine whose upload limit (64 MiB) is smaller than the raw
crops: ``pack IN.npz OUT.npz [QUALITY [EVERY]]`` stores every EVERY-th region as a JPEG (quality 95 by
default: about 5x smaller),
``unpack OUT.npz IN.npz`` decodes them back into the layout `FaceRegions.load` reads.
"""

from __future__ import annotations

import io
import sys

import numpy as np
from PIL import Image


def pack(source: str, target: str, quality: int = 95, every: int = 1) -> None:
    data = np.load(source)
    blobs = []
    for region in data["regions"][::every]:
        buffer = io.BytesIO()
        Image.fromarray(region).save(buffer, "JPEG", quality=quality)
        blobs.append(np.frombuffer(buffer.getvalue(), np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    np.savez(
        target,
        jpeg=np.concatenate(blobs),
        offsets=offsets,
        points=data["points"][::every],
        names=data["names"][::every],
    )


def unpack(source: str, target: str) -> None:
    data = np.load(source)
    jpeg, offsets = data["jpeg"], data["offsets"]
    regions = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(jpeg[a:b].tobytes())).convert("RGB"))
            for a, b in zip(offsets[:-1], offsets[1:])
        ]
    )
    np.savez(target, regions=regions, points=data["points"], names=data["names"])


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit("usage: regions_jpeg.py pack SOURCE.npz TARGET.npz [QUALITY [EVERY]] | unpack SOURCE.npz TARGET.npz")
    if sys.argv[1] == "pack":
        pack(sys.argv[2], sys.argv[3], *(int(v) for v in sys.argv[4:6]))
    else:
        unpack(sys.argv[2], sys.argv[3])
