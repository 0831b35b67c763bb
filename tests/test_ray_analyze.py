"""`facecascade analyze --ray` and `facecascade.distributed.analyze_dataset` on a local Ray instance:
the same records as the single-process command, the Parquet rows (one per face, one per bad file),
exit codes, URIs read by Ray, and a clear message without Ray."""

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import ray

from facecascade.cli import main
from facecascade.distributed import analyze_dataset
from facecascade.outputs import ParquetWriter, Record, parquet_schema
from facecascade.structures import Faces

from .conftest import write_mixed

ATTRIBUTE_TOLERANCE = 1e-6  # attribute probabilities: other images in a batch move the last float bits


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One small local Ray instance for the module; `analyze_dataset` and ``--ray`` join it."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=300 * 1024**2, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """`write_mixed`: 2 photos and the bad-input corpus (9 more photos with faces, a 1x1 image, 5 bad files)."""
    root = tmp_path_factory.mktemp("ray") / "in"
    readable = write_mixed(root)
    return root, sorted(name for name, ok in readable.items() if not ok)


def _run(args: list[str]) -> tuple[int, list[str]]:
    """``facecascade analyze ARGS -q``: the exit code and the ``error:`` lines on stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["analyze", *args, "-q"])
    return code, [line for line in err.getvalue().splitlines() if line.startswith("error: ")]


@pytest.fixture(scope="module")
def single(folder, tmp_path_factory):
    """The single-process command on the folder, full pipeline: (exit code, error lines, JSON lines, Parquet)."""
    out = tmp_path_factory.mktemp("single")
    code, errors = _run([str(folder[0]), "--json", str(out / "r.jsonl"), "--parquet", str(out / "r.parquet")])
    return code, errors, _lines(out / "r.jsonl"), out / "r.parquet"


@pytest.fixture(scope="module")
def on_ray(folder, tmp_path_factory):
    """The same with ``--ray`` (2 actors on the module's Ray instance)."""
    out = tmp_path_factory.mktemp("on_ray")
    args = [str(folder[0]), "--ray", "--json", str(out / "r.jsonl"), "--parquet", str(out / "r.parquet")]
    code, errors = _run(args)
    return code, errors, _lines(out / "r.jsonl"), out / "r.parquet"


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _assert_same(a, b, path: str = "") -> None:
    """Equal JSON values, keys in the same order; attribute probabilities within `ATTRIBUTE_TOLERANCE`."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert list(a) == list(b), path
        for key in a:
            _assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and ".attributes." in path:
        assert a == pytest.approx(b, abs=ATTRIBUTE_TOLERANCE), path
    else:
        assert a == b, path


@pytest.mark.slow
def test_ray_json_lines_equal_the_single_process_ones(folder, single, on_ray):
    code, errors, records, _ = on_ray
    assert single[0] == 1 and code == 0  # bad files: 1 without Ray, 0 with it (no --strict)
    assert errors == single[1] and len(errors) == len(folder[1])  # the same lines, in input order
    assert [r["file"] for r in records] == [r["file"] for r in single[2]]
    assert sum(len(r["faces"]) for r in records) > 20 and "attributes" in records[0]["faces"][0]
    _assert_same(records, single[2])


@pytest.mark.slow
def test_parquet_rows_one_per_face_and_one_per_bad_file(folder, on_ray, single):
    records, table = on_ray[2], pq.read_table(on_ray[3])
    assert table.schema.equals(parquet_schema(), check_metadata=False)
    rows = table.to_pylist()
    for record in records:
        mine = [row for row in rows if row["file"] == record["file"]]
        assert len(mine) == len(record["faces"]), record["file"]  # no row for the 1x1 image
        for row, face in zip(mine, record["faces"]):
            assert row["error"] is None and (row["width"], row["height"]) == (record["width"], record["height"])
            assert row["box"] == face["box"] and row["score"] == face["score"]
            assert row["landmarks"] == face["landmarks"] and row["iterations"] is None
            assert dict(row["attributes"]) == pytest.approx(face["attributes"], abs=ATTRIBUTE_TOLERANCE)
    root, bad = folder
    for name in bad:
        (row,) = [row for row in rows if row["file"] == str(root / "corpus" / name)]
        assert row["error"] and name in row["error"]
        assert all(row[column] is None for column in row if column not in ("file", "error"))
    assert not [row for row in rows if row["file"].endswith("one_pixel.png")]
    assert len(rows) == sum(len(r["faces"]) for r in records) + len(bad)
    assert pq.read_table(single[3]).num_rows == len(rows)  # the single-process writer: the same rows


@pytest.mark.slow
def test_strict_exits_1_on_bad_files(folder, tmp_path):
    root, _ = folder
    inputs = [str(root / "a.jpg"), str(root / "corpus" / "empty.jpg")]
    code, errors = _run([*inputs, "--ray", "--strict", "--attributes", "none", "--json", str(tmp_path / "r.jsonl")])
    assert code == 1 and len(errors) == 1 and "empty.jpg" in errors[0]
    assert len(_lines(tmp_path / "r.jsonl")) == 1


@pytest.mark.slow
def test_analyze_dataset_from_python_on_uris_read_by_ray(folder, tmp_path):
    root, _ = folder
    uris = [f"file://{root / 'a.jpg'}", f"file://{root / 'corpus' / 'text_file.jpg'}"]
    records, errors = [], []
    summary = analyze_dataset(
        uris,
        parquet=tmp_path / "r.parquet",
        analyzer={"attributes": None},
        actors=1,  # the module's 2 CPUs: one actor, one for Ray's read tasks
        progress=False,
        on_record=records.append,
        on_error=errors.append,
    )
    assert (summary.files, summary.analysed, summary.failed) == (2, 1, [str(root / "corpus" / "text_file.jpg")])
    assert [r.source for r in records] == [str(root / "a.jpg")] and len(records[0].faces) == 3
    assert "cannot decode" in errors[0].error and "0x" not in errors[0].error
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert [row["error"] is None for row in rows] == [True, True, True, False]
    assert rows[0]["attributes"] is None


def test_bad_arguments_exit_2_without_starting_a_job(folder, tmp_path, capsys):
    photo = str(folder[0] / "a.jpg")
    assert main(["analyze", photo, "--ray", "--draw", str(tmp_path / "d")]) == 2
    assert main(["analyze", photo, "--ray", photo]) == 2  # --ray took the path as the cluster address
    assert main(["analyze", photo, "--actors", "2"]) == 2  # needs --ray
    assert main(["analyze", photo, "s3://bucket/photos/", "--ray"]) == 2  # local paths and URIs mixed
    with pytest.raises(SystemExit) as exit_info:
        main(["analyze", photo, "--ray", "--actors", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--ray took" in err and "--actors need --ray" in err and "not both" in err


@pytest.mark.slow
def test_actor_that_cannot_build_its_analyzer_is_a_bad_argument(folder, capsys):
    assert main(["analyze", str(folder[0] / "a.jpg"), "--ray", "--detector", "nosuch", "-q"]) == 2
    assert "error: the Ray actors could not build the analyzer: ValueError: unknown weights 'nosuch'" in (
        capsys.readouterr().err
    )


def test_without_ray_or_pyarrow_a_clear_message(folder, tmp_path, monkeypatch, capsys):
    photo = str(folder[0] / "a.jpg")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails
    assert main(["analyze", photo, "--ray", "--json", str(tmp_path / "r.jsonl")]) == 2
    assert 'pip install "facecascade[ray]"' in capsys.readouterr().err
    assert not (tmp_path / "r.jsonl").exists()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    assert main(["analyze", photo, "--parquet", str(tmp_path / "r.parquet")]) == 2
    assert 'pip install "facecascade[ray]"' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no temporary file left


def test_parquet_writer_rows_and_nothing_half_written(tmp_path):
    faces = Faces([[1, 2, 3, 4]], [0.5], np.arange(10).reshape(1, 5, 2), iterations=[7])
    with ParquetWriter(tmp_path / "r.parquet", row_group_size=1) as writer:
        writer.write(Record("clip.mp4", 3, 10, 20, faces))
        writer.write(Record("none.jpg", None, 10, 20, Faces.empty()))
        writer.write_error("bad.jpg", "cannot decode")
    rows = pq.read_table(tmp_path / "r.parquet").to_pylist()
    assert rows[0] == {
        "file": "clip.mp4",
        "frame": 3,
        "width": 10,
        "height": 20,
        "face": 0,
        "box": [1.0, 2.0, 3.0, 4.0],
        "score": 0.5,
        "landmarks": [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]],
        "iterations": 7,
        "attributes": None,
        "error": None,
    }
    assert rows[1]["file"] == "bad.jpg" and rows[1]["error"] == "cannot decode" and len(rows) == 2
    with pytest.raises(RuntimeError), ParquetWriter(tmp_path / "crash.parquet") as writer:
        writer.write(Record("a.jpg", None, 10, 20, faces))
        raise RuntimeError("crash mid-run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.parquet"]


def test_core_import_does_not_import_ray():
    code = "import sys, facecascade, facecascade.distributed; assert 'ray' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
