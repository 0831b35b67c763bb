"""Where the shared real data lives: ``$FACECASCADE_DATA`` or ``../shared/data`` beside the repo."""

import os
from pathlib import Path

DATA = Path(os.environ.get("FACECASCADE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def require(relative: str) -> Path:
    """The path of a shared data item; a missing one fails the test (it never silently skips)."""
    path = DATA / relative
    assert path.exists(), f"shared data {path} is missing: set FACECASCADE_DATA to the shared/data folder"
    return path
