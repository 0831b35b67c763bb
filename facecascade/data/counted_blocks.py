"""Annotation files made of counted blocks (WIDER FACE ``*_bbx_gt.txt``, FDDB ``*ellipseList.txt``).

Each block is::

    some/image/path                                an image path line
    2                                              the number of rows that follow
    ... numbers ...                                one line per face, parsed by the caller
    ... numbers ...

Blank lines between blocks are skipped. Errors name the offending ``file:line``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

Row = TypeVar("Row")


def numbers(line: str) -> list[float] | None:
    """The whitespace-separated numbers of ``line``, or None when one of its fields is not a number."""
    try:
        return [float(v) for v in line.split()]
    except ValueError:
        return None


def read_counted_blocks(
    path: Path, parse_row: Callable[[str], Row], what: str = "box", empty_placeholder: str | None = None
) -> list[tuple[str, list[Row]]]:
    """``(image path, rows)`` per block of ``path``, in file order.

    ``parse_row(line)`` turns one row line into a row, or raises ValueError with a message such as
    ``"expected ..., got '...'"`` (it is prefixed with ``file:line``). ``what`` names a row in error
    messages ("box", "ellipse"). ``empty_placeholder``: a line of numbers that may follow a block of
    0 rows and is then consumed (WIDER FACE's ``0 0 0 0 0 0 0 0 0 0``); any other numbers there are
    an error, and a path line is left for the next block.
    """
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    while lines and not lines[-1]:
        lines.pop()
    where = lambda i: f"{path}:{i + 1}"  # noqa: E731 (0-based index to file:line)
    placeholder = None if empty_placeholder is None else numbers(empty_placeholder)
    blocks: list[tuple[str, list[Row]]] = []
    i = 0
    while i < len(lines):
        image = lines[i]
        if not image:
            i += 1
            continue
        if len(image.split()) > 1 and numbers(image) is not None:
            raise ValueError(
                f"{where(i)}: expected an image path, got {image!r} "
                f"(does a face count above not match its {what} lines?)"
            )
        if i + 1 >= len(lines):
            raise ValueError(f"{where(i)}: {image} has no face count line (truncated file?)")
        try:
            count = int(lines[i + 1])
        except ValueError:
            raise ValueError(f"{where(i + 1)}: expected the face count of {image}, got {lines[i + 1]!r}") from None
        if count < 0:
            raise ValueError(f"{where(i + 1)}: negative face count {count}")
        i += 2
        rows: list[Row] = []
        for _ in range(count):
            if i >= len(lines):
                raise ValueError(
                    f"{path}: truncated: {image} has {count} faces but the file ends after {len(rows)} {what} lines"
                )
            try:
                rows.append(parse_row(lines[i]))
            except ValueError as exc:
                raise ValueError(f"{where(i)}: {exc}") from None
            i += 1
        if count == 0 and placeholder is not None and i < len(lines):
            values = numbers(lines[i])
            if values is not None:
                if values != placeholder:
                    raise ValueError(
                        f"{where(i)}: {image} has 0 faces, expected the placeholder line "
                        f"{empty_placeholder!r}, got {lines[i]!r}"
                    )
                i += 1
        blocks.append((image, rows))
    return blocks
