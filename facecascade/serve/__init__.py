"""``facecascade serve``: the whole pipeline behind HTTP (FastAPI, run by uvicorn), with dynamic
batching across requests, Prometheus metrics and a web page at ``/``.

    >>> from facecascade.serve import ServeConfig, create_app
    >>> app = create_app(ServeConfig(max_batch=8, max_wait_ms=5))   # an ASGI app for any server
"""

from .app import create_app
from .config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
