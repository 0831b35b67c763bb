"""Detection pipelines: models + ops, from images to `Faces`."""

from .detector import FaceDetector
from .mtcnn import MTCNNCascade, MTCNNConfig

__all__ = ["FaceDetector", "MTCNNCascade", "MTCNNConfig"]
