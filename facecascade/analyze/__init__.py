"""The whole pipeline: detector, aligner and attribute model behind one call, and the
``facecascade analyze`` command for images, folders and videos."""

from .analyzer import FaceAnalyzer

__all__ = ["FaceAnalyzer"]
