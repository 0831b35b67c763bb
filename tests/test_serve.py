"""`facecascade serve` through FastAPI's TestClient: the answers equal the CLI's JSON lines, every
bad input gets its status and message and the next good request still succeeds, the queue
refuses with 503 when full, metrics and models are reported."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from facecascade.cli import main
from facecascade.registry import weights_info
from facecascade.serve import ServeConfig, create_app
from facecascade.serve.schema import ImageResult
from facecascade.testing.corpus import bomb_png, write_corpus

from .serving import LocalServer
from .shared_data import require

PHOTO = "dlib_faces/2008_002506.jpg"
JPEG = {"content-type": "image/jpeg"}
FORM_WITHOUT_FILE = b'--x\r\nContent-Disposition: form-data; name="other"\r\n\r\nhello\r\n--x--\r\n'


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(ServeConfig(max_bytes=2_000_000))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def photo() -> bytes:
    return require(PHOTO).read_bytes()


def _encoded(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _still_serves(client: TestClient, photo: bytes) -> None:
    response = client.post("/v1/detect", content=photo, headers=JPEG)
    assert response.status_code == 200 and len(response.json()["faces"]) == 3


def test_analyze_answers_the_clis_json_line(client: TestClient, photo: bytes, tmp_path: Path):
    response = client.post("/v1/analyze", content=photo, headers=JPEG)
    assert response.status_code == 200 and float(response.headers["x-process-time-ms"]) > 0
    served = response.json()
    ImageResult.model_validate(served)
    assert main(["analyze", str(require(PHOTO)), "--json", str(tmp_path / "out.jsonl"), "-q"]) == 0
    (line,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    ImageResult.model_validate(line)
    assert list(served) == list(line) == ["file", "width", "height", "faces"]
    assert served["file"] == "upload" and (served["width"], served["height"]) == (line["width"], line["height"])
    assert len(served["faces"]) == len(line["faces"]) == 3
    for ours, cli in zip(served["faces"], line["faces"]):
        assert list(ours) == list(cli) == ["box", "score", "landmarks", "attributes"]
        np.testing.assert_allclose(ours["box"], cli["box"], atol=1e-3)
        np.testing.assert_allclose(ours["landmarks"], cli["landmarks"], atol=1e-3)
        assert ours["attributes"].keys() == cli["attributes"].keys() and len(cli["attributes"]) == 40
        np.testing.assert_allclose(list(ours["attributes"].values()), list(cli["attributes"].values()), atol=1e-4)


def test_multipart_options_detect_and_draw(client: TestClient, photo: bytes):
    form = client.post("/v1/analyze?attributes=top5", files={"file": ("party.jpg", photo, "image/jpeg")})
    assert form.status_code == 200 and form.json()["file"] == "party.jpg"
    full = client.post("/v1/analyze", content=photo, headers=JPEG).json()
    for top, every in zip(form.json()["faces"], full["faces"]):
        assert list(top["attributes"]) == sorted(every["attributes"], key=lambda k: -every["attributes"][k])[:5]
    none = client.post("/v1/analyze?attributes=none", content=photo, headers=JPEG).json()
    detect = client.post("/v1/detect", content=photo, headers={"content-type": "application/octet-stream"}).json()
    assert all("attributes" not in f for f in none["faces"] + detect["faces"])
    assert [f["box"] for f in detect["faces"]] == [f["box"] for f in none["faces"]]
    bigger = client.post("/v1/detect?min_face=300", content=photo, headers=JPEG).json()
    assert bigger["faces"] == []  # the request's own smallest face (faces here are ~100 px), batched apart
    drawn = client.post("/v1/analyze?draw=true", content=photo, headers=JPEG)
    assert drawn.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(drawn.content)).size == (full["width"], full["height"])


@pytest.mark.parametrize(
    "body, headers, status, error",
    [
        (b"", JPEG, 400, "not an image"),
        (b"plain words, not pixels", JPEG, 400, "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 64, JPEG, 400, "not an image"),  # a JPEG header and nothing more
        (b"{}", {"content-type": "application/json"}, 415, "unsupported media type"),
        (b"x", {}, 415, "unsupported media type"),
        (bomb_png(), {"content-type": "image/png"}, 400, "image too large"),
        (FORM_WITHOUT_FILE, {"content-type": "multipart/form-data; boundary=x"}, 400, "no file"),
        (b"garbage", {"content-type": "multipart/form-data"}, 400, "bad multipart body"),
    ],
)
def test_bad_requests_are_json_errors_and_the_service_goes_on(
    client: TestClient, photo: bytes, body: bytes, headers: dict[str, str], status: int, error: str
):
    response = client.post("/v1/analyze", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error and response.json()["detail"]
    _still_serves(client, photo)


def test_uploads_over_the_limit_are_413_declared_or_streamed(client: TestClient, photo: bytes):
    big = b"\xff" * 2_000_001
    declared = client.post("/v1/analyze", content=big, headers=JPEG)
    assert declared.status_code == 413 and "2,000,001 bytes" in declared.json()["detail"]
    streamed = client.post("/v1/analyze", content=iter([big[:1_000_000], big[1_000_000:]]), headers=JPEG)
    assert streamed.status_code == 413 and "exceeds the limit" in streamed.json()["detail"]
    in_form = client.post("/v1/analyze", files={"file": ("big.jpg", big, "image/jpeg")})
    assert in_form.status_code == 413
    _still_serves(client, photo)


def test_awkward_but_valid_images_are_answered(client: TestClient, photo: bytes):
    rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    grey = rgb.mean(2).astype(np.uint16) * 257
    cases = {
        "16-bit grey": _encoded(Image.fromarray(grey)),
        "CMYK JPEG": _encoded(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "grey": _encoded(Image.fromarray(rgb).convert("L")),
        "alpha": _encoded(Image.fromarray(rgb).convert("RGBA")),
        "1x1": _encoded(Image.new("RGB", (1, 1))),
    }
    for name, data in cases.items():
        response = client.post("/v1/analyze", content=data, headers={"content-type": "image/png"})
        assert response.status_code == 200, name
        assert len(response.json()["faces"]) == (0 if name == "1x1" else 3), name


def test_the_bad_input_corpus(client: TestClient, photo: bytes, tmp_path: Path):
    face = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))[60:220, 200:340]
    expected = write_corpus(tmp_path, face)
    for name, readable in expected.items():
        path = tmp_path / name
        if path.is_dir() or not path.exists():
            continue
        response = client.post("/v1/analyze", content=path.read_bytes(), headers={"content-type": "image/*"})
        if readable:
            assert response.status_code == 200, (name, response.text)
        else:
            assert response.status_code in (400, 413) and response.json()["error"], name
    _still_serves(client, photo)


def test_a_full_queue_answers_503_with_retry_after(photo: bytes):
    with TestClient(create_app(ServeConfig(attributes=None, max_queue=0))) as client:
        response = client.post("/v1/detect", content=photo, headers=JPEG)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"] == "busy"
        assert 'facecascade_errors_total{error="busy"} 1.0' in client.get("/metrics").text


def test_health_models_metrics_and_unknown_routes(client: TestClient, photo: bytes):
    assert client.get("/healthz").json() == {"status": "ok"}
    models = {m["role"]: m for m in client.get("/v1/models").json()}
    assert set(models) == {"detector", "attributes"}
    assert models["detector"]["sha256"] == weights_info("mtcnn").sha256
    assert models["attributes"]["card"].endswith("MODEL_CARD_mcfa.md")
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not found"
    assert client.get("/v1/analyze").status_code == 405
    invalid = client.post("/v1/analyze?attributes=some", content=photo, headers=JPEG)
    assert invalid.status_code == 422 and "attributes" in invalid.json()["detail"]
    typo = client.post("/v1/detect?min-face=40&attributes=all", content=photo, headers=JPEG)
    assert typo.status_code == 422 and "unknown query parameter(s) attributes, min-face" in typo.json()["detail"]
    _still_serves(client, photo)
    text = client.get("/metrics").text
    for needle in (
        'facecascade_requests_total{endpoint="/v1/detect",status="200"}',
        'facecascade_requests_total{endpoint="/v1/analyze",status="422"}',
        "facecascade_request_seconds_bucket",
        "facecascade_batch_size_count",
        "facecascade_queue_depth 0.0",
    ):
        assert needle in text, needle


def test_openapi_documents_the_bodies_and_the_answers(client: TestClient):
    spec = client.get("/openapi.json").json()
    analyze = spec["paths"]["/v1/analyze"]["post"]
    assert {"image/jpeg", "multipart/form-data"} <= set(analyze["requestBody"]["content"])
    assert {"200", "400", "413", "415", "503"} <= set(analyze["responses"])
    result = spec["components"]["schemas"]["ImageResult"]
    assert result["examples"][0]["faces"] and "Face" in spec["components"]["schemas"]


def test_serve_command_rejects_bad_settings(capsys: pytest.CaptureFixture[str]):
    assert main(["serve", "--max-batch", "0"]) == 2
    assert "max_batch must be >= 1" in capsys.readouterr().err


def _send_and_hang_up(url: str, head: bytes, body: bytes) -> None:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(head + body)


def test_clients_that_hang_up_leave_the_server_serving(photo: bytes):
    server = LocalServer(ServeConfig(attributes=None))
    server.start()
    try:
        head = b"POST /v1/detect HTTP/1.1\r\nHost: test\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
        _send_and_hang_up(server.url, head % 100_000, photo[:1000])  # mid-upload
        for _ in range(4):
            _send_and_hang_up(server.url, head % len(photo), photo)  # before the answer
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = client.post("/v1/detect", content=photo, headers=JPEG)
            assert answer.status_code == 200 and len(answer.json()["faces"]) == 3
            assert client.get("/healthz").status_code == 200
            deadline = time.monotonic() + 30  # the hung-up requests finish in their own time
            while 'error="client disconnected"} 1.0' not in client.get("/metrics").text:
                assert time.monotonic() < deadline, "the upload cut short was never counted"
                time.sleep(0.1)
    finally:
        server.stop()
