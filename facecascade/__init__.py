"""facecascade: faces from photos with cascaded CNNs.

Public API::

    from facecascade import FaceAnalyzer, FaceDetector, Faces, load_image
    faces = FaceDetector().detect("photo.jpg")      # facecascade's own shipped "mtcnn" weights
    faces = FaceAnalyzer().analyze("photo.jpg")     # the whole pipeline: detector + 40 MCFA attributes
    faces = FaceAligner().align("photo.jpg", faces) # DCRN-refined landmarks (+ iterations per face)
    crops = faces.crops("photo.jpg", size=112)      # aligned crops for face-recognition models
    facecascade.list_weights()                      # the named weights; weights_info(name) for one
"""

from .align import FaceAligner
from .analyze import FaceAnalyzer
from .attributes import AttributeClassifier
from .detect import FaceDetector
from .io import load_image
from .registry import WeightsInfo, WeightsIntegrityError, list_weights, weights_info
from .structures import Faces

__version__ = "0.1.0"
__all__ = [
    "AttributeClassifier",
    "FaceAligner",
    "FaceAnalyzer",
    "FaceDetector",
    "Faces",
    "WeightsInfo",
    "WeightsIntegrityError",
    "__version__",
    "list_weights",
    "load_image",
    "weights_info",
]
