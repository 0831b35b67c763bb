"""The FastAPI application: ``POST /v1/detect`` and ``/v1/analyze``, ``GET /healthz``,
``/v1/models``, ``/metrics``, the web page at ``/`` and the OpenAPI document at ``/openapi.json``.

`create_app` has no side effects: the models are loaded when the server starts the app (its
lifespan), by the batch workers, and released when it stops."""

from __future__ import annotations

import asyncio
import io
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..outputs import Record, record_json
from ..registry import file_sha256, is_registered, weights_info
from ..structures import Faces
from ..viz import draw_faces
from .batcher import DynamicBatcher, QueueFull
from .config import ServeConfig
from .errors import ApiError, install_error_handlers
from .metrics import CONTENT_TYPE, ServiceMetrics
from .pipelines import PipelineKey, Pipelines
from .schema import ErrorBody, ImageResult, ModelInfo
from .uploads import read_image

PAGE = Path(__file__).resolve().parent / "page"
TOP = 5  # attributes=top5
QUERY_OPTIONS = {"detect": {"min_face", "fast", "draw"}, "analyze": {"min_face", "fast", "draw", "attributes"}}
IMAGE_BODY = {"schema": {"type": "string", "format": "binary"}}
REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "the image: the raw body (image/jpeg, image/png, ...) or the 'file' field of a form",
        "content": {
            "image/jpeg": IMAGE_BODY,
            "image/png": IMAGE_BODY,
            "application/octet-stream": IMAGE_BODY,
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": what}
    for status, what in (
        (400, "empty, undecodable or too many pixels"),
        (413, "over --max-bytes"),
        (415, "not an image content type"),
        (422, "invalid query parameters"),
        (503, "queue full: retry after Retry-After seconds"),
    )
}
FACES_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": ImageResult,
        "description": "the faces (JSON), or the drawn image with draw=true",
        "content": {"image/jpeg": {}},
    },
    **ERRORS,
}


def filter_attributes(result: dict[str, Any], attributes: str) -> dict[str, Any]:
    """``result`` with each face's attributes all kept, the `TOP` most probable, or none."""
    if attributes == "all":
        return result
    for face in result["faces"]:
        probabilities = face.pop("attributes", None)
        if attributes == "top5" and probabilities is not None:
            face["attributes"] = dict(sorted(probabilities.items(), key=lambda kv: -kv[1])[:TOP])
    return result


def jpeg(image: Any, faces: Faces) -> Response:
    buffer = io.BytesIO()
    draw_faces(image, faces).save(buffer, format="JPEG", quality=90)
    return Response(buffer.getvalue(), media_type="image/jpeg")


def model_info(role: str, weights: str | None) -> ModelInfo | None:
    """A loaded model as `/v1/models` lists it: registry facts for a name, the file's SHA-256 for a path."""
    if weights is None:
        return None
    if is_registered(weights):
        info = weights_info(weights)
        card = None if info.card_path is None else str(info.card_path)
        return ModelInfo(role=role, name=weights, kind=info.kind, sha256=info.sha256, card=card)
    path = Path(weights)
    return ModelInfo(role=role, name=weights, sha256={path.name: file_sha256(path)} if path.is_file() else {})


class Service:
    """What the endpoints share: the settings, the batcher (from startup on) and the metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.batcher: DynamicBatcher | None = None
        self.metrics = ServiceMetrics(lambda: self.batcher.depth() if self.batcher else 0)
        self._threads_before = 0

    def start(self) -> None:
        import torch

        c = self.config
        self._threads_before = torch.get_num_threads()
        torch.set_num_threads(c.thread_count())  # process-wide: shared by the workers; restored by stop
        batcher = DynamicBatcher(
            lambda: Pipelines(c).warm(),
            c.max_batch,
            c.max_wait_ms,
            c.max_queue,
            c.worker_count(),
            self.metrics.batch_size.observe,
        )
        batcher.start()
        self.batcher = batcher

    def stop(self) -> None:
        if self.batcher is not None:
            import torch

            self.batcher.stop()
            self.batcher = None
            torch.set_num_threads(self._threads_before)

    async def faces(self, key: PipelineKey, image: Any) -> Faces:
        if self.batcher is None:
            raise ApiError(503, "starting", "the models are still loading; retry shortly", {"Retry-After": "1"})
        try:
            return await self.batcher.submit(key, image)
        except QueueFull as exc:
            raise ApiError(503, "busy", f"{exc}; retry after a second", {"Retry-After": "1"}) from exc
        except Exception as exc:  # a failed batch: this request fails, the service goes on
            raise ApiError(500, "internal error", f"{type(exc).__name__}: {exc}") from exc

    async def answer(
        self, request: Request, endpoint: str, min_face: float | None, fast: bool | None, attributes: str, draw: bool
    ) -> Response:
        c = self.config
        unknown = sorted(set(request.query_params) - QUERY_OPTIONS[endpoint])
        if unknown:  # a typo such as min-face would otherwise fall back to the default silently
            known = ", ".join(sorted(QUERY_OPTIONS[endpoint]))
            raise ApiError(422, "invalid parameters", f"unknown query parameter(s) {', '.join(unknown)}; use {known}")
        if self.batcher is not None and self.batcher.full():  # refused before reading and decoding
            raise ApiError(
                503, "busy", f"{self.batcher.depth()} images are waiting; retry after a second", {"Retry-After": "1"}
            )
        image, name = await read_image(request, c.max_bytes, c.max_pixels)
        key = PipelineKey(
            endpoint, c.min_face if min_face is None else float(min_face), c.fast if fast is None else fast
        )
        faces = await self.faces(key, image)
        if draw:
            return await asyncio.to_thread(jpeg, image, faces)
        result = record_json(Record(name, None, image.shape[1], image.shape[0], faces))
        return JSONResponse(filter_attributes(result, attributes))


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "other")


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The service as an ASGI app; the models load when a server starts it."""
    service = Service(config or ServeConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        yield
        await asyncio.to_thread(service.stop)

    app = FastAPI(
        title="facecascade",
        version=__version__,
        description="Faces, 5 landmarks and 40 attributes from photos with cascaded CNNs.",
        lifespan=lifespan,
    )
    app.state.service = service
    install_error_handlers(app)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        seconds = time.perf_counter() - began
        service.metrics.observe(_route_name(request), response.status_code, seconds)
        if response.status_code >= 400:
            service.metrics.errors.labels(getattr(request.state, "error", "other")).inc()
        response.headers["X-Process-Time-Ms"] = f"{seconds * 1000:.1f}"
        return response

    _add_face_routes(app, service)
    _add_info_routes(app, service)
    return app


def _add_face_routes(app: FastAPI, service: Service) -> None:
    min_face_q = Query(None, ge=4, le=10_000, description="smallest face side in pixels (default: the server's)")
    fast_q = Query(None, description="the detector's fast path (default: the server's)")
    draw_q = Query(False, description="answer with the image drawn (JPEG) instead of JSON")

    @app.post("/v1/detect", responses=FACES_RESPONSES, openapi_extra=REQUEST_BODY, summary="Faces and 5 landmarks")
    async def detect(
        request: Request, min_face: float | None = min_face_q, fast: bool | None = fast_q, draw: bool = draw_q
    ) -> Response:
        """The detector's faces: boxes, scores, 5 landmarks (no aligner, no attributes)."""
        return await service.answer(request, "detect", min_face, fast, "none", draw)

    @app.post("/v1/analyze", responses=FACES_RESPONSES, openapi_extra=REQUEST_BODY, summary="The whole pipeline")
    async def analyze(
        request: Request,
        min_face: float | None = min_face_q,
        fast: bool | None = fast_q,
        attributes: Literal["all", "top5", "none"] = Query(
            "all", description="per face: all 40, the 5 likeliest, none"
        ),
        draw: bool = draw_q,
    ) -> Response:
        """Detector, aligner (when the server runs one) and attributes: the same object per image
        as ``facecascade analyze --json`` writes."""
        return await service.answer(request, "analyze", min_face, fast, attributes, draw)


def _add_info_routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", summary="Liveness and readiness")
    async def healthz() -> JSONResponse:
        ready = service.batcher is not None
        return JSONResponse({"status": "ok" if ready else "starting"}, status_code=200 if ready else 503)

    @app.get("/v1/models", response_model=list[ModelInfo], summary="The loaded weights")
    async def models() -> list[ModelInfo]:
        c = service.config
        found = [
            model_info(role, w)
            for role, w in (("detector", c.detector), ("aligner", c.aligner), ("attributes", c.attributes))
        ]
        return [m for m in found if m is not None]

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(service.metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(PAGE / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=os.fspath(PAGE)), name="static")
