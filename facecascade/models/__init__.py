"""Neural network modules (no I/O) and the loader of named weights."""

from .mtcnn import ONet, PNet, RNet, StageOutput
from .weights import NAMED_WEIGHTS, MTCNNNets, load_mtcnn, save_mtcnn

__all__ = ["NAMED_WEIGHTS", "MTCNNNets", "ONet", "PNet", "RNet", "StageOutput", "load_mtcnn", "save_mtcnn"]
