"""Landmark alignment: `FaceAligner` refines faces' landmarks with a DCRN model."""

from .aligner import FaceAligner

__all__ = ["FaceAligner"]
