"""Archive-scale scoring on a Ray cluster: ``cxr score`` for more images than one machine holds.

    import cxr.ray
    cxr.ray.score("/archive/xrays", model="default", output="scores.parquet")

Ray Data spreads the paths over an actor pool: each actor loads the model once and scores
batches of files read from its own node's view of the (shared) file system. The result is one
Parquet file with ``cxr score``'s CSV columns, one row per image; a file that cannot be scored
is an error row, never a failed job. A worker node lost mid-run costs only its unfinished
batches, which Ray runs again elsewhere (its actors are restarted and their tasks retried), and
the output is checked to hold every image exactly once before it is written.

Needs ``ray[data]`` and ``pyarrow`` (``pip install 'cxr[ray]'``).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

import cxr
from cxr import _native

__all__ = ["list_images", "score"]

PathArg = Union[str, "os.PathLike[str]"]


def list_images(paths_or_folder: Union[PathArg, Iterable[PathArg]]) -> List[str]:
    """The images ``score`` would read: each folder walked recursively (sorted, symbolic links
    followed, each real folder once), each file as given; every file once, by its real path."""
    inputs = [paths_or_folder] if isinstance(paths_or_folder, (str, os.PathLike)) else list(paths_or_folder)
    found: List[str] = []
    for item in inputs:
        path = os.fsdecode(os.fspath(item))
        found.extend(_walk(path) if os.path.isdir(path) else [path])
    seen = set()
    unique = []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _walk(folder: str) -> List[str]:
    return _native.walk(folder)


class _Scorer:
    """One actor of the pool: loads the model once, then scores batches of paths."""

    def __init__(self, model: str) -> None:
        self.model = cxr.Model(model)

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, List[Any]]:
        paths = [str(p) for p in batch["path"]]
        return _rows(self.model, paths, self.model.predict_batch(paths, errors="return"))


def _rows(model: cxr.Model, paths: List[str], results: List[Any]) -> Dict[str, List[Any]]:
    """Columns of ``cxr score``'s CSV for one batch; an error row has no probabilities or class."""
    columns: Dict[str, List[Any]] = {name: [] for name in _column_names(model)}
    for path, result in zip(paths, results):
        columns["path"].append(path)
        failed = isinstance(result, cxr.CxrError)
        for name in model.class_names:
            columns[f"p_{name}"].append(None if failed else result.probabilities[name])
        columns["class"].append(None if failed else result.class_name)
        columns["model_sha256"].append(model.sha256)
        columns["error"].append(str(result) if failed else None)
    return columns


def _column_names(model: cxr.Model) -> List[str]:
    return ["path", *(f"p_{name}" for name in model.class_names), "class", "model_sha256", "error"]


def _schema(model: cxr.Model) -> Any:
    """Probabilities as float32: the model's own values, not a widened or rounded copy."""
    import pyarrow as pa

    probabilities = [pa.field(f"p_{name}", pa.float32()) for name in model.class_names]
    return pa.schema([pa.field("path", pa.string()), *probabilities, pa.field("class", pa.string()), pa.field("model_sha256", pa.string()), pa.field("error", pa.string())])


def score(
    paths_or_folder: Union[PathArg, Iterable[PathArg]],
    model: str = "default",
    output: PathArg = "out.parquet",
    *,
    address: Optional[str] = None,
    batch_size: int = 16,
    concurrency: Optional[Union[int, Tuple[int, int]]] = None,
    num_cpus: float = 1,
) -> Dict[str, Any]:
    """Scores every image under ``paths_or_folder`` on the Ray cluster and writes ``output``.

    ``model`` is resolved on each worker as ``cxr.Model`` resolves it (``"default"`` is the
    model built into the package, so workers need nothing but ``cxr`` installed; a model file
    must be at the same absolute path on every node). Connects to
    ``address`` (or ``$RAY_ADDRESS``, or starts a local Ray) unless Ray is already initialised.
    ``concurrency`` is the actor pool's size (default: from one to one per CPU of the
    cluster), ``num_cpus`` what each actor reserves.

    The Parquet file has one row per image (``path, p_<class>…, class, model_sha256,
    error``); rows that failed have an ``error`` and null probabilities and class. It is
    written under a temporary name and renamed once complete. Returns ``{"output", "images",
    "errors"}``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray

    paths = list_images(paths_or_folder)
    local = cxr.Model(model)  # fails here, once, for a model that cannot load
    if os.path.exists(model):
        model = os.path.abspath(model)  # workers resolve it from their own working folder
    if not ray.is_initialized():
        ray.init(address=address)
    if concurrency is None:
        concurrency = (1, max(1, int(ray.cluster_resources().get("CPU", 1) // num_cpus)))
    schema = _schema(local)
    output = os.fspath(output)
    partial = output + ".partial"
    rows = 0
    errors = 0
    seen: Dict[str, int] = {}
    with pq.ParquetWriter(partial, schema) as writer:
        if paths:
            dataset = ray.data.from_items([{"path": p} for p in paths]).map_batches(
                _Scorer,
                fn_constructor_kwargs={"model": model},
                batch_size=batch_size,
                concurrency=concurrency,
                num_cpus=num_cpus,
                batch_format="numpy",
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
                table = pa.Table.from_pydict({name: batch.column(name).to_pylist() for name in schema.names}, schema=schema)
                writer.write_table(table)
                rows += table.num_rows
                errors += sum(e is not None for e in table.column("error").to_pylist())
                for p in table.column("path").to_pylist():
                    seen[p] = seen.get(p, 0) + 1
    _check_complete(paths, seen, partial)
    os.replace(partial, output)
    return {"output": output, "images": rows, "errors": errors}


def _check_complete(paths: List[str], seen: Dict[str, int], partial: str) -> None:
    """Refuses an output that lost or repeated an image (Ray retries must never show up as
    duplicates, nor a lost node as missing rows); the partial file is kept for inspection."""
    asked = set(paths)
    missing = [p for p in paths if p not in seen]
    repeated = [p for p, n in seen.items() if n > 1]
    foreign = [p for p in seen if p not in asked]
    if missing or repeated or foreign:
        raise cxr.CxrError(
            f"{partial}: incomplete scoring ({len(missing)} images missing, e.g. {missing[:3]}; "
            f"{len(repeated)} repeated, e.g. {repeated[:3]}; {len(foreign)} not asked for); not renamed"
        )
