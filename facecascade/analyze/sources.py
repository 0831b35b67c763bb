"""What `facecascade analyze` reads: image files, folders of them, and video files frame by frame.

Everything comes out as a stream of `Item`: a decoded RGB image, or one error line for an input
that could not be read (a bad file never stops the stream).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import IMAGE_EXTENSIONS, image_files, load_image

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"})


@dataclass
class Item:
    """One image or video frame to analyse, or the error that replaced it.

    Attributes:
        source: the input file, as named or found.
        frame: index of the frame in a video (``None`` for still images).
        image: RGB ``uint8 (H, W, 3)``; ``None`` when ``error`` is set.
        error: why the input could not be read (one line).
    """

    source: str
    frame: int | None = None
    image: np.ndarray | None = None
    error: str | None = None


def is_video(path: Path, force_video: bool = False) -> bool:
    """Whether ``path`` is read as a video: its extension says so, or ``force_video``."""
    return force_video or path.suffix.lower() in VIDEO_EXTENSIONS


def input_files(paths: Iterable[str | os.PathLike], videos: bool = False) -> Iterator[Path]:
    """Files named, and the image files (plus video files when ``videos``) below named folders,
    recursively and sorted, so a run's order is reproducible."""
    wanted = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS if videos else IMAGE_EXTENSIONS
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from image_files(path, extensions=wanted)
        else:
            yield path


def read_items(files: Iterable[Path], video: bool = False, every: int = 1) -> Iterator[Item]:
    """Every image and every ``every``-th video frame of ``files`` (as `input_files` lists
    them), decoded, in order.

    Args:
        video: read files without an image extension as videos, whatever their extension.
        every: keep one video frame in ``every``.
    """
    for path in files:
        if is_video(path, video and path.suffix.lower() not in IMAGE_EXTENSIONS):
            yield from video_frames(path, every)
            continue
        try:
            yield Item(str(path), image=load_image(path))
        except (ValueError, FileNotFoundError) as exc:
            yield Item(str(path), error=str(exc))


def video_frames(path: Path, every: int = 1) -> Iterator[Item]:
    """Frames ``0, every, 2 * every, ...`` of the video at ``path`` as RGB arrays (PyAV).

    A file that cannot be opened or decoded gives one error `Item` (after the frames read
    before the damage, if any).
    """
    import av  # PyAV: FFmpeg's decoders as wheels

    if not path.exists():
        yield Item(str(path), error=f"video file not found: '{path}'")
        return
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                yield Item(str(path), error=f"'{path}' has no video stream")
                return
            for index, frame in enumerate(container.decode(video=0)):
                if index % every == 0:
                    yield Item(str(path), frame=index, image=frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, OSError, ValueError) as exc:
        yield Item(str(path), error=f"cannot decode '{path}' as a video ({type(exc).__name__}: {exc})")
