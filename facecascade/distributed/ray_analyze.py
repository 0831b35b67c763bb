"""Batch inference on Ray: the whole `FaceAnalyzer` pipeline as a Ray Data job (`analyze_dataset`,
``facecascade analyze PATH... --ray [ADDRESS]``).

Local files and folders are listed as ``facecascade analyze`` lists them (`input_files`) and handed
to Ray as an explicit list of paths; URIs (``s3://bucket/photos/``, ``gs://...``, ...) go to
``ray.data.read_binary_files`` unchanged. A fixed pool of actors (`AnalyzeBatches`), each building
one analyzer when Ray starts it, decodes and analyses the inputs in batches; the results come back
to the driver in input order (Ray's ``preserve_order``), one per input: a `Record`, or an `Item`
with the error for an input that could not be read or decoded (never a failed job).

Ray and pyarrow are optional (``pip install "facecascade[ray]"``) and imported only when used.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from ..analyze.runner import RunSummary
from ..analyze.sources import Item, input_files, is_video
from ..io import IMAGE_EXTENSIONS, load_image, load_image_bytes
from ..outputs import AtomicFile, JsonLinesWriter, ParquetWriter, Record, write_failure

RAY_MISSING = 'running on Ray needs Ray Data and pyarrow: pip install "facecascade[ray]"'
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Union: `X | Iterable[...]` fails at run time on Python 3.10
Inputs = Union[str, os.PathLike, Iterable[Union[str, os.PathLike]]]  # noqa: UP007


def require_ray() -> Any:
    """The ``ray`` module with ``ray.data`` loaded; ``ImportError`` naming the extra when Ray Data
    or pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401  # Ray Data's batches, and the Parquet writer
        import ray
        import ray.data  # loads the submodule
    except ImportError as exc:
        raise ImportError(f"{RAY_MISSING} ({exc})") from exc
    return ray


def is_uri(name: str) -> bool:
    """Whether ``name`` is a URI with a scheme (``s3://...``, ``file://...``) rather than a local path."""
    return bool(_URI.match(name))


def list_inputs(inputs: Inputs) -> tuple[list[str], bool]:
    """The inputs of a job and whether they are URIs: local paths become the image files they name
    (folders searched recursively, as `input_files` does); URIs are kept as given, for Ray to list.

    Raises:
        ValueError: local paths and URIs mixed, or a video file named (videos run without Ray).
    """
    names = [os.fspath(inputs)] if isinstance(inputs, (str, os.PathLike)) else [os.fspath(p) for p in inputs]
    uris = [name for name in names if is_uri(name)]
    if uris:
        if len(uris) != len(names):
            raise ValueError("give either local paths or URIs to one Ray job, not both")
        return uris, True
    files = list(input_files(names))
    videos = [str(path) for path in files if is_video(path)]
    if videos:
        raise ValueError(f"videos are not analysed on Ray (run without --ray for them): {videos[0]}")
    return [str(path) for path in files], False


def decode(source: str, payload: bytes | None = None) -> Item:
    """The image of ``source`` (read from disk, or decoded from ``payload`` when Ray read the bytes),
    or the error that replaced it, as `facecascade analyze` reports it."""
    try:
        image = load_image(source) if payload is None else load_image_bytes(payload, name=source)
    except (ValueError, FileNotFoundError) as exc:
        return Item(source, error=str(exc))
    return Item(source, image=image)


def _result_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("file", pa.string()),
            ("width", pa.int32()),
            ("height", pa.int32()),
            ("error", pa.string()),
            ("faces", pa.binary()),  # the pickled `Faces`
        ]
    )


class AnalyzeBatches:
    """The Ray Data actor: builds one `FaceAnalyzer` when Ray starts it, then turns batches of
    inputs (a ``path`` column, plus ``bytes`` when Ray read the files) into one row per input:
    ``file``, ``width``, ``height``, ``error`` (null unless unreadable) and ``faces`` (the pickled
    `Faces`; null for an error).

    Args:
        analyzer: keyword arguments of `FaceAnalyzer`.
        threads: torch's CPU threads in this actor (default: what Ray gives it, its ``num_cpus``).
    """

    def __init__(self, analyzer: Mapping[str, Any], threads: int | None = None) -> None:
        from ..analyze.analyzer import FaceAnalyzer

        if threads:
            import torch

            torch.set_num_threads(threads)
        self.analyzer = FaceAnalyzer(**analyzer)

    def __call__(self, batch: Any) -> Any:
        """``pyarrow.Table`` of inputs -> ``pyarrow.Table`` of results, row for row."""
        import pyarrow as pa

        paths = batch.column("path").to_pylist()
        payloads = batch.column("bytes").to_pylist() if "bytes" in batch.column_names else [None] * len(paths)
        items = [decode(path, payload) for path, payload in zip(paths, payloads)]
        found = iter(self.analyzer.analyze_arrays([item.image for item in items if item.image is not None]))
        columns: dict[str, list[Any]] = {name: [] for name in _result_schema().names}
        for item in items:
            faces = None if item.image is None else pickle.dumps(next(found), protocol=pickle.HIGHEST_PROTOCOL)
            height, width = (None, None) if item.image is None else item.image.shape[:2]
            for name, value in zip(columns, (item.source, width, height, item.error, faces)):
                columns[name].append(value)
        return pa.Table.from_pydict(columns, schema=_result_schema())


def _source_dataset(ray: Any, sources: list[str], remote: bool, batch_size: int) -> Any:
    """Ray's dataset of the inputs: URIs read by Ray (``bytes`` and ``path``), or local paths alone
    (``path``: the actor reads each file, so a missing or unreadable one is an error row too),
    in blocks of about ``batch_size``."""
    if remote:
        extensions = sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS)
        return ray.data.read_binary_files(sources, include_paths=True, file_extensions=extensions)
    blocks = max(1, math.ceil(len(sources) / batch_size))
    return ray.data.from_items([{"path": path} for path in sources], override_num_blocks=blocks)


@dataclass(frozen=True)
class JobOptions:
    """How `analysis_dataset` runs the analyzer.

    Attributes:
        analyzer: keyword arguments of `FaceAnalyzer` (its ``batch_size`` is ``batch_size``).
        batch_size: inputs per batch, for Ray's batches and the analyzer's.
        actors: the size of the actor pool (at most one per batch of local files); each actor
            holds one analyzer.
        actor_cpus, actor_gpus: Ray resources each actor reserves (``actor_gpus=1`` with
            ``device="cuda"`` for one GPU per actor).
        threads: torch's CPU threads per actor (default: torch's, which Ray sets to ``actor_cpus``).
    """

    analyzer: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    actors: int = 2
    actor_cpus: float = 1.0
    actor_gpus: float = 0.0
    threads: int | None = None


def analysis_dataset(sources: list[str], remote: bool = False, options: JobOptions | None = None) -> Any:
    """The (lazy) ``ray.data.Dataset`` of results, one row per input in input order, as
    `AnalyzeBatches` gives them; `results` turns its rows into records and errors.

    Args:
        sources, remote: what `list_inputs` gives.
        options: the analyzer, batches and actors (`JobOptions`; its defaults when ``None``).
    """
    ray = require_ray()
    job = options or JobOptions()
    actors = job.actors if remote else max(1, min(job.actors, math.ceil(len(sources) / job.batch_size)))
    dataset = _source_dataset(ray, sources, remote, job.batch_size).map_batches(
        AnalyzeBatches,
        fn_constructor_kwargs={"analyzer": {**job.analyzer, "batch_size": job.batch_size}, "threads": job.threads},
        batch_size=job.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=job.actor_cpus,
        num_gpus=job.actor_gpus or None,
    )
    dataset.context.execution_options.preserve_order = True
    return dataset


class AnalyzerSetupError(ValueError):
    """The actors could not build the analyzer: unknown weights, a checkpoint the workers lack, a
    device they do not have."""


def results(dataset: Any) -> Iterator[Record | Item]:
    """The rows of an `analysis_dataset`, in order: a `Record` per analysed image, an `Item` with
    ``error`` set per input that could not be read.

    Raises:
        AnalyzerSetupError: an actor failed to build its analyzer (Ray's traceback is in its log).
    """
    from ray.exceptions import RayActorError

    try:
        for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in batch.to_pylist():
                if row["error"] is not None:
                    yield Item(row["file"], error=row["error"])
                else:
                    yield Record(row["file"], None, row["width"], row["height"], pickle.loads(row["faces"]))
    except RayActorError as exc:
        if not exc.actor_init_failed:
            raise
        last = [line.strip() for line in str(exc).splitlines() if line.strip()][-1:]  # the worker's exception
        raise AnalyzerSetupError(f"the Ray actors could not build the analyzer: {''.join(last)}") from exc


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the block: the instance this process already joined, as it is; else
    a new local one (``address`` ``None`` or ``"local"``, with ``num_cpus``) or the cluster at
    ``address`` (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``), shut down afterwards."""
    ray = require_ray()
    if ray.is_initialized():
        yield
        return
    if address in (None, "local"):
        ray.init(num_cpus=num_cpus)
    else:
        ray.init(address=address)
    try:
        yield
    finally:
        ray.shutdown()


def _deliver(
    result: Record | Item,
    writers: list[AtomicFile],
    summary: RunSummary,
    on_record: Callable[[Record], None] | None,
    on_error: Callable[[Item], None] | None,
) -> None:
    """One result into the writers, the summary and the callback it is for."""
    if isinstance(result, Item):
        summary.failed.append(result.source)
        write_failure(writers, result.source, result.error or "unreadable")
        if on_error is not None:
            on_error(result)
        return
    summary.analysed += 1
    for writer in writers:
        writer.write(result)  # type: ignore[attr-defined]  # every writer here has `write`
    if on_record is not None:
        on_record(result)


def analyze_dataset(
    inputs: Inputs,
    parquet: str | os.PathLike | None = None,
    json: str | os.PathLike | None = None,
    *,
    analyzer: Mapping[str, Any] | None = None,
    batch_size: int = 8,
    actors: int = 2,
    actor_cpus: float = 1.0,
    actor_gpus: float = 0.0,
    threads: int | None = None,
    address: str | None = None,
    progress: bool = True,
    on_record: Callable[[Record], None] | None = None,
    on_error: Callable[[Item], None] | None = None,
) -> RunSummary:
    """Faces, landmarks and attributes of every image in ``inputs``, as a Ray Data job.

    Args:
        inputs: a path or URI, or a list of them: image files, folders (searched recursively),
            or URIs that Ray reads (``s3://bucket/photos/``); not local paths and URIs together.
        parquet: write a Parquet file here, one row per face and one per failed input
            (`ParquetWriter`; docs/ray.md).
        json: write JSON lines here, what ``facecascade analyze --json`` writes (``"-"``: stdout).
        analyzer: keyword arguments of `FaceAnalyzer` (``detector``, ``aligner``, ``attributes``,
            ``device``, ``min_face_size``, ``thresholds``, ``fast``), built once per actor.
        batch_size, actors, actor_cpus, actor_gpus, threads: see `JobOptions`.
        address: the Ray cluster to join (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``);
            ``None``: a local instance with enough CPUs for the actors. A Ray this process has
            already joined is used as it is.
        progress: Ray Data's progress bars.
        on_record, on_error: called in input order with each analysed image's `Record` and each
            unreadable input's `Item` (its ``error`` set).

    Returns:
        The `RunSummary` (``files``, ``analysed``, ``failed`` sources). Bad inputs never fail the
        job; outputs are written atomically when it ends.

    Raises:
        ImportError: Ray Data or pyarrow missing (the message names ``pip install "facecascade[ray]"``).
        ValueError: see `list_inputs`; `AnalyzerSetupError` when the actors cannot build the analyzer.
    """
    require_ray()
    sources, remote = list_inputs(inputs)
    summary = RunSummary(len(sources))
    if not sources:
        return summary
    # a local instance: room for every actor, plus one CPU for Ray's read tasks when Ray reads the files
    num_cpus = max(os.cpu_count() or 1, math.ceil(actors * actor_cpus) + remote)
    with ray_session(address, num_cpus), contextlib.ExitStack() as stack:
        writers: list[AtomicFile] = [stack.enter_context(ParquetWriter(parquet))] if parquet else []
        if json:
            writers.append(stack.enter_context(JsonLinesWriter(json)))
        options = JobOptions(dict(analyzer or {}), batch_size, actors, actor_cpus, actor_gpus, threads)
        dataset = analysis_dataset(sources, remote, options)
        dataset.context.enable_progress_bars = progress
        for result in results(dataset):
            _deliver(result, writers, summary, on_record, on_error)
    summary.files = summary.analysed + len(summary.failed)  # URIs: the files Ray found
    return summary
