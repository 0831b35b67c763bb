"""Neural network modules (no I/O) and the loader of named weights."""

from .mtcnn import ONet, PNet, RNet, StageOutput
from .weights import NAMED_WEIGHTS, MTCNNNets, load_mtcnn, save_mtcnn

__all__ = ["PNet", "RNet", "ONet", "StageOutput", "MTCNNNets", "NAMED_WEIGHTS", "load_mtcnn", "save_mtcnn"]
