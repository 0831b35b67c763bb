"""An uploaded image out of a request: a raw body (``image/*`` or ``application/octet-stream``)
or the ``file`` part of ``multipart/form-data``, refused early when it is too large or of
another type, decoded with the library's `facecascade.io.load_image_bytes`."""

from __future__ import annotations

import numpy as np
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from ..io import ImageTooLarge, load_image_bytes
from .errors import ApiError

RAW_TYPES = ("image/", "application/octet-stream")


def _declared_length(request: Request, max_bytes: int) -> None:
    length = request.headers.get("content-length")
    if length is None:
        return
    if not length.isdigit():
        raise ApiError(400, "bad request", f"Content-Length {length!r} is not a number")
    if int(length) > max_bytes:
        raise ApiError(413, "payload too large", f"the upload is {int(length):,} bytes; the limit is {max_bytes:,}")


async def _raw_body(request: Request, max_bytes: int) -> bytes:
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > max_bytes:  # a chunked upload without Content-Length
            raise ApiError(413, "payload too large", f"the upload exceeds the limit of {max_bytes:,} bytes")
    return bytes(data)


async def _multipart_file(request: Request, max_bytes: int) -> tuple[bytes, str]:
    try:
        form = await request.form(max_files=1, max_fields=16, max_part_size=max_bytes)
    except ClientDisconnect:
        raise
    except Exception as exc:  # python-multipart's and Starlette's parse errors
        raise ApiError(400, "bad multipart body", str(exc) or type(exc).__name__) from exc
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(400, "no file", "send the image in a multipart field named 'file'")
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ApiError(413, "payload too large", f"the upload exceeds the limit of {max_bytes:,} bytes")
    return data, upload.filename or "upload"


async def read_image(request: Request, max_bytes: int, max_pixels: int) -> tuple[np.ndarray, str]:
    """``(RGB uint8 (H, W, 3) image, file name)`` of the request's upload, else an `ApiError`:
    415 for another content type, 413 over ``max_bytes``, 400 for empty or undecodable data or an
    image over ``max_pixels`` (a decompression bomb is refused from its header)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "multipart/form-data" and not kind.startswith(RAW_TYPES):
        raise ApiError(
            415,
            "unsupported media type",
            f"got {kind or 'no Content-Type'}; send the image as the body (image/jpeg, image/png, ...) "
            "or as the 'file' field of multipart/form-data",
        )
    _declared_length(request, max_bytes)
    try:
        if kind == "multipart/form-data":
            data, name = await _multipart_file(request, max_bytes)
        else:
            data, name = await _raw_body(request, max_bytes), "upload"
    except ClientDisconnect as exc:
        raise ApiError(400, "client disconnected", "the request body ended before it was complete") from exc
    try:
        return load_image_bytes(data, name, max_pixels), name
    except ImageTooLarge as exc:
        raise ApiError(400, "image too large", str(exc)) from exc
    except ValueError as exc:
        raise ApiError(400, "not an image", str(exc)) from exc
