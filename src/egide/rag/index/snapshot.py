"""Save and load an index as plain files — ``.npy`` arrays, JSON lists and a faiss graph,
never pickle — so that a server with a million chunks starts without re-embedding or
rebuilding the graph.

Layout of a snapshot directory: ``manifest.json`` (written last: a directory without it
is not a snapshot), ``rows-{chunk,doc,part,length}.npy``, ``vectors.npy``,
``documents.json``, ``partitions.json``, ``vocabulary.json``,
``segment-<i>-{terms,starts,rows,tfs}.npy`` and, when there is a graph, ``graph.faiss``
(plus ``graph-nodes.npy`` when its nodes are not its rows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from egide.rag.index.bm25 import Postings, Segment
from egide.rag.index.graph import Graph
from egide.rag.index.rows import RowTable
from egide.rag.index.vectors import VectorIndex

FORMAT = "egide-hybrid-index"
VERSION = 1
_COLUMNS = ("chunk", "doc", "part", "length")
_SEGMENT = ("terms", "starts", "rows", "tfs")


def save(
    directory: Path,
    settings: dict[str, Any],
    rows: RowTable,
    postings: Postings,
    vectors: VectorIndex,
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "manifest.json").unlink(missing_ok=True)
    for name in _COLUMNS:
        np.save(directory / f"rows-{name}.npy", getattr(rows, name).view(), allow_pickle=False)
    np.save(directory / "vectors.npy", vectors.matrix.view(), allow_pickle=False)
    _write_json(directory / "documents.json", rows.doc_names)
    _write_json(directory / "partitions.json", [list(p) for p in rows.partitions])
    vocabulary = sorted(postings.vocabulary, key=postings.vocabulary.__getitem__)
    _write_json(directory / "vocabulary.json", vocabulary)
    for i, segment in enumerate(postings.segments):
        for name in _SEGMENT:
            path = directory / f"segment-{i}-{name}.npy"
            np.save(path, getattr(segment, name), allow_pickle=False)
    graph = vectors.graph
    if graph is not None:
        faiss.write_index(graph.index, str(directory / "graph.faiss"))
        if graph.node_rows is not None:
            np.save(directory / "graph-nodes.npy", graph.node_rows, allow_pickle=False)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "settings": settings,
        "rows": len(rows),
        "segments": len(postings.segments),
        "graph": None
        if graph is None
        else {"covered": graph.covered, "mapped": graph.node_rows is not None},
    }
    _write_json(directory / "manifest.json", manifest)


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / "manifest.json"
    if not path.is_file():
        raise ValueError(f"{directory} holds no complete index snapshot (no manifest.json)")
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ValueError(
            f"{path} is not a version {VERSION} {FORMAT} snapshot; rebuild the index from the store"
        )
    return manifest


def load(
    directory: Path, manifest: dict[str, Any], postings: Postings, vectors: VectorIndex
) -> RowTable:
    """Fill ``postings`` and ``vectors`` from the snapshot; return the row table."""
    columns = {name: _load(directory / f"rows-{name}.npy") for name in _COLUMNS}
    rows = RowTable.restore(
        columns,
        json.loads((directory / "documents.json").read_text()),
        [(lib, int(key)) for lib, key in json.loads((directory / "partitions.json").read_text())],
    )
    matrix = _load(directory / "vectors.npy")
    if matrix.shape != (len(rows), vectors.dim):
        raise ValueError(f"{directory}/vectors.npy does not match the rows; save again")
    vectors.matrix.replace(matrix)
    vocabulary = json.loads((directory / "vocabulary.json").read_text())
    postings.vocabulary = {term: i for i, term in enumerate(vocabulary)}
    postings.segments = [
        Segment(*(_load(directory / f"segment-{i}-{name}.npy") for name in _SEGMENT))
        for i in range(manifest["segments"])
    ]
    described = manifest["graph"]
    if described is not None:
        graph = Graph(vectors.dim, vectors.m, vectors.ef_construction)
        graph.index = faiss.read_index(str(directory / "graph.faiss"))
        graph.covered = int(described["covered"])
        if described["mapped"]:
            graph.node_rows = _load(directory / "graph-nodes.npy")
        vectors.graph = graph
    return rows


def _load(path: Path) -> np.ndarray:
    array: np.ndarray = np.load(path, allow_pickle=False)
    return array


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False))
