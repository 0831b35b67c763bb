"""ONNX export of the shipped networks (``facecascade export onnx``) and the exported files as
inference backends of `FaceDetector` (docs/export.md).

    >>> from facecascade.export import to_onnx, read_manifest
    >>> manifest_path = to_onnx("mtcnn", "out/mtcnn")     # pnet.onnx, rnet.onnx, onet.onnx, ... + manifest.json
    >>> read_manifest("out/mtcnn")["pipeline"]["stages"][0]["threshold"]

The onnx packages are optional (``pip install "facecascade[onnx]"``) and imported only when used.
"""

from .deps import MissingDependencyError
from .exporter import to_onnx
from .manifest import FORMAT_VERSION, MANIFEST_NAME, ManifestError, read_manifest
from .onnx_files import DEFAULT_OPSET

__all__ = [
    "DEFAULT_OPSET",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "ManifestError",
    "MissingDependencyError",
    "read_manifest",
    "to_onnx",
]
