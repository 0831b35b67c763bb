"""`facecascade serve` against its own OpenAPI document with schemathesis.

Every operation of ``/openapi.json`` gets generated requests (query parameters, content types,
bodies; valid and invalid; other HTTP methods), through the ASGI app in this process with its
lifespan running: schemathesis starts it on the first request and ends it after each test. No
answer may be a 5xx, and each must conform to the document: a documented status, its content
type, a body that matches its schema; invalid requests must be refused with a 4xx.

The generated images are tiny (no faces), so real photos with faces go through both face
endpoints too, as explicit cases checked the same way. Kept small: 20 examples per operation.
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient

from facecascade.serve import ServeConfig, create_app

from .shared_data import require

PHOTO = "dlib_faces/2008_002506.jpg"  # 3 faces
CONFIG = schemathesis.Config.from_dict(
    {
        "generation": {
            "max-examples": 20,
            "deterministic": True,
            "database": "none",
            # Unknown query parameters are refused (422), so generated ones must be.
            "allow-extra-parameters": True,
        },
        "checks": {
            # Any bytes are schema-valid; those that are not an image get 400, as documented.
            "positive_data_acceptance": {"enabled": False},
        },
    }
)


def small_app():
    # The detector alone behind /v1/detect; the attribute model behind /v1/analyze (its 40
    # probabilities are part of the answer's schema); small batches.
    return create_app(ServeConfig(max_batch=4, max_wait_ms=2, threads=2))


schema = schemathesis.openapi.from_asgi("/openapi.json", small_app(), config=CONFIG)


@schema.parametrize()
def test_every_operation_conforms_and_never_answers_5xx(case: schemathesis.Case) -> None:
    case.call_and_validate()


@pytest.mark.parametrize(
    ("path", "query", "media_type"),
    [
        ("/v1/detect", {}, "image/jpeg"),
        ("/v1/detect", {"fast": "true", "min_face": "40"}, "application/octet-stream"),
        ("/v1/analyze", {}, "image/jpeg"),
        ("/v1/analyze", {"attributes": "top5"}, "image/jpeg"),
        ("/v1/analyze", {"attributes": "none", "draw": "true"}, "image/jpeg"),
    ],
)
def test_real_faces_conform(path: str, query: dict[str, str], media_type: str) -> None:
    operation = schema[path]["POST"]
    case = operation.Case(query=query, body=require(PHOTO).read_bytes(), media_type=media_type)
    response = case.call_and_validate()
    assert response.status_code == 200
    if query.get("draw") != "true":
        assert len(response.json()["faces"]) == 3


def test_405_names_the_allowed_methods() -> None:  # RFC 9110; once missing, found by schemathesis
    response = TestClient(small_app()).get("/v1/detect")  # no lifespan: no models needed
    assert response.status_code == 405
    assert response.headers.get("allow") == "POST"
