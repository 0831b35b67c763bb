"""The service's JSON, documented as pydantic models (the OpenAPI document's schemas).

The answer for an image is built by `facecascade.outputs.record_json`, the function behind
``facecascade analyze --json``; `ImageResult` describes it (tests check both against it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE_FACE: dict[str, Any] = {
    "box": [211.4, 80.2, 263.9, 146.7],
    "score": 0.9993,
    "landmarks": [[228.1, 106.3], [250.0, 105.9], [239.6, 118.8], [229.9, 131.2], [248.3, 130.8]],
    "attributes": {"Smiling": 0.93, "Male": 0.88, "No_Beard": 0.81},
}


class Face(BaseModel):
    """One face, as `facecascade.Faces.to_dicts` gives it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_FACE]})

    box: list[float] = Field(min_length=4, max_length=4, description="x1, y1, x2, y2 in pixels")
    score: float = Field(ge=0, le=1, description="face probability")
    landmarks: list[list[float]] | None = Field(
        None, description="5 points (x, y): image-left eye, image-right eye, nose, left and right mouth corner"
    )
    iterations: int | None = Field(None, description="refinement steps of the DCRN aligner (when one ran)")
    attributes: dict[str, float] | None = Field(None, description="CelebA attribute -> probability (when asked)")


class ImageResult(BaseModel):
    """What was found in one image: a line of ``facecascade analyze --json``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"file": "photo.jpg", "width": 640, "height": 480, "faces": [EXAMPLE_FACE]}]},
    )

    file: str = Field(description="the uploaded file's name (raw bodies: 'upload')")
    frame: int | None = Field(None, description="video frame index (never set by the service)")
    width: int
    height: int
    faces: list[Face]


class ErrorBody(BaseModel):
    """Every error: a short reason and what to do about it."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "unsupported media type", "detail": "send image/* or multipart"}]}
    )

    error: str
    detail: str


class ModelInfo(BaseModel):
    """A loaded model: its registry name, kind, files' SHA-256 and model card."""

    role: str
    name: str
    kind: str | None = None
    sha256: dict[str, str] = {}
    card: str | None = None
