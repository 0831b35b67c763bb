"""Face datasets: readers for their official formats into one record type, and splits."""

from .boxfit import BoxFromPoints, fit_box_transform
from .caltech import CALTECH_BOXES, read_caltech, read_caltech_points
from .records import NUM_LANDMARKS, FaceRecord
from .split import select_split, split_records
from .voc import read_voc, read_voc_file

__all__ = ["BoxFromPoints", "CALTECH_BOXES", "FaceRecord", "NUM_LANDMARKS", "fit_box_transform", "read_caltech",
           "read_caltech_points", "read_voc", "read_voc_file", "select_split", "split_records"]
