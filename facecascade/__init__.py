"""facecascade: faces from photos with cascaded CNNs.

Public API::

    from facecascade import FaceDetector, Faces, load_image
    faces = FaceDetector().detect("photo.jpg")      # facecascade's own shipped "mtcnn" weights
"""

from .detect import FaceDetector
from .io import load_image
from .structures import Faces

__version__ = "0.1.0"
__all__ = ["FaceDetector", "Faces", "load_image", "__version__"]
