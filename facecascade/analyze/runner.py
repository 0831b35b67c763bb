"""The folder loop both commands share: read ahead, batch, analyse, hand each result on,
report each unreadable input on one line, count."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ..io import IMAGE_EXTENSIONS
from ..outputs import Record
from ..structures import Faces
from .prefetch import prefetch
from .sources import VIDEO_EXTENSIONS, Item, is_video, read_items


def error_line(source: str, message: str) -> str:
    """``error: <source>: <message>``, without naming the source twice."""
    return f"error: {message}" if source in message else f"error: {source}: {message}"


def batches(items: Iterable[Item], size: int, on_error: Callable[[Item], None]) -> Iterator[list[Item]]:
    """Readable items in lists of ``size``; each unreadable one goes to ``on_error`` as it comes."""
    batch: list[Item] = []
    for item in items:
        if item.error is not None:
            on_error(item)
            continue
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass
class RunSummary:
    files: int
    analysed: int = 0  # images and video frames
    failed: list[str] = field(default_factory=list)

    def exit_code(self, strict: bool = True) -> int:
        """1 after any failure (``strict``; else 0 once the count is printed) or when there was
        nothing to analyse, else 0 (printing why)."""
        if self.failed:
            print(
                f"{len(self.failed)} of {self.files} input(s) failed; {self.analysed} image(s)/frame(s) analysed",
                file=sys.stderr,
            )
            return 1 if strict else 0
        if self.files == 0:
            print(
                "error: no image files found in the given paths (extensions: "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}; videos: {', '.join(sorted(VIDEO_EXTENSIONS))})",
                file=sys.stderr,
            )
            return 1
        if self.analysed == 0:
            print("error: nothing analysed: the inputs held no frames", file=sys.stderr)
            return 1
        return 0


def run_files(
    files: Sequence[Path],
    analyze: Callable[[list[np.ndarray]], list[Faces]],
    on_record: Callable[[Record, np.ndarray], None],
    batch_size: int = 8,
    video: bool = False,
    every: int = 1,
    progress: bool = True,
    on_error: Callable[[Item], None] | None = None,
) -> RunSummary:
    """Analyse ``files`` (images, and videos frame by frame) in batches; ``on_record(record, image)``
    gets each result in input order, ``on_error(item)`` each unreadable input (after its error line).
    Decoding runs a batch or two ahead in a background thread."""
    from tqdm import tqdm

    videos = video or any(is_video(f) for f in files)
    summary = RunSummary(len(files))
    bar = tqdm(
        total=None if videos else len(files),
        unit="img",
        file=sys.stderr,
        dynamic_ncols=True,
        disable=not progress or (len(files) < 2 and not videos),
    )

    def report(item: Item) -> None:
        summary.failed.append(item.source)
        bar.update(0 if videos else 1)
        tqdm.write(error_line(item.source, item.error or "unreadable"), file=sys.stderr)
        if on_error is not None:
            on_error(item)

    items = prefetch(read_items(files, video=video, every=every), depth=2 * batch_size)
    try:
        for batch in batches(items, batch_size, report):
            images = cast("list[np.ndarray]", [it.image for it in batch])  # `batches` passes readable items only
            for item, image, faces in zip(batch, images, analyze(images)):
                h, w = image.shape[:2]
                on_record(Record(item.source, item.frame, w, h, faces), image)
            summary.analysed += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
    return summary
