"""Face datasets: readers for their official formats into one record type, and splits."""

from .boxfit import BoxFromPoints, fit_box_transform
from .caltech import CALTECH_BOXES, read_caltech, read_caltech_points
from .records import NUM_LANDMARKS, FaceRecord
from .split import select_split, split_records
from .voc import read_voc, read_voc_file

__all__ = [
    "CALTECH_BOXES",
    "NUM_LANDMARKS",
    "BoxFromPoints",
    "FaceRecord",
    "fit_box_transform",
    "read_caltech",
    "read_caltech_points",
    "read_voc",
    "read_voc_file",
    "select_split",
    "split_records",
]

from .celeba import CELEBA_ATTRIBUTES, read_celeba, read_celeba_attributes, read_celeba_landmarks
from .coco import read_coco
from .fddb import ellipse_boxes, read_fddb, read_fddb_ellipses
from .formats import FORMATS, default_images, read_dataset
from .imglab import ibug68_to_5, read_imglab
from .mtfl import read_mtfl, read_mtfl_points
from .wider import read_wider, read_wider_boxes, read_wider_mat, read_wider_setting

__all__ += [
    "CELEBA_ATTRIBUTES",
    "FORMATS",
    "default_images",
    "ellipse_boxes",
    "ibug68_to_5",
    "read_celeba",
    "read_celeba_attributes",
    "read_celeba_landmarks",
    "read_coco",
    "read_dataset",
    "read_fddb",
    "read_fddb_ellipses",
    "read_imglab",
    "read_mtfl",
    "read_mtfl_points",
    "read_wider",
    "read_wider_boxes",
    "read_wider_mat",
    "read_wider_setting",
]
