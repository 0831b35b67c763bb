"""argparse ``type=`` converters shared by the subcommands: a bad value is a usage error that
names what was expected."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def checked(cast: Callable[[str], Any], ok: Callable[[Any], bool], expectation: str) -> Callable[[str], Any]:
    """An argparse ``type=``: ``cast(text)`` when that works and passes ``ok``, else an error
    "expected <expectation>, got 'text'"."""

    def convert(text: str):
        try:
            value = cast(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected {expectation}, got {text!r}") from exc
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expectation}, got {text!r}")
        return value

    return convert


fraction = checked(float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
non_negative = checked(float, lambda v: v >= 0.0, "a number >= 0")
positive_int = checked(int, lambda v: v >= 1, "a positive integer")


def stage_thresholds(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.6,0.7,0.7, got {text!r}") from exc
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three numbers like 0.6,0.7,0.7, got {text!r}")
    return values
