"""Libraries, documents, chunks, leases and the change log, on SQLite and PostgreSQL."""

from __future__ import annotations

import numpy as np

from egide.store.documents import DocumentRecord, DocumentRepository, NewChunk
from egide.store.libraries import LibraryRecord, LibraryRepository, new_id


def _library(repo: LibraryRepository) -> LibraryRecord:
    record = LibraryRecord(
        id=new_id(),
        name="rapports",
        description=None,
        owner_org=None,
        created_by="u1",
        ceiling="S",
        read_org=None,
        read_compartments=frozenset({"ALPHA"}),
        write_org=None,
        write_compartments=frozenset(),
        chunk_size=None,
        created_at="2026-01-01T00:00:00Z",
        updated_at="2026-01-01T00:00:00Z",
    )
    return repo.create(record)


def _document(library_id: str, chunks: int, label: str = "DR") -> DocumentRecord:
    return DocumentRecord(
        id=new_id(),
        library_id=library_id,
        name="cr.md",
        mime_type="text/markdown",
        extension="md",
        size=100,
        sha256="0" * 64,
        label=label,
        pages=None,
        uploaded_by="u1",
        status="in_progress",
        error=None,
        chunks_total=chunks,
        chunks_done=0,
        tokens=0,
        attributes={"title": "Compte rendu"},
        created_at="2026-01-01T00:00:00Z",
        processed_at=None,
    )


def test_document_goes_from_stored_to_searchable(database) -> None:
    libraries, docs = LibraryRepository(database), DocumentRepository(database)
    lib = _library(libraries)
    assert libraries.get(lib.id).read_compartments == {"ALPHA"}
    doc = _document(lib.id, 3)
    docs.add(doc, [NewChunk(i, 1, ("Titre",), f"texte {i}", 5) for i in range(3)], lease_s=60)
    assert docs.get(doc.id).attributes == {"title": "Compte rendu"}
    assert list(docs.searchable_chunks()) == []  # not done yet
    assert docs.claim(60) is None  # leased to its uploader
    first = docs.unembedded(doc.id, 2)
    assert [c.position for c in first] == [0, 1] and first[0].headings == ("Titre",)
    blob = np.ones(4, dtype="<f4").tobytes()
    assert docs.store_vectors(doc.id, [(c.id, blob) for c in first], 10, 60)
    assert [c.position for c in docs.unembedded(doc.id, 5)] == [2]
    rest = docs.unembedded(doc.id, 5)
    assert docs.store_vectors(doc.id, [(c.id, blob) for c in rest], 5, 60)
    assert docs.finish(doc.id, "2026-01-01T00:00:01Z")
    stored = docs.get(doc.id)
    assert stored.status == "done" and stored.chunks_done == 3 and stored.tokens == 15
    found = list(docs.searchable_chunks(batch=2))
    assert [c.position for c in found] == [0, 1, 2] and found[0].vector == blob
    changes = docs.changes_since(0)
    assert [c.kind for c in changes] == ["document-added"]
    assert docs.last_change() == changes[-1].seq


def test_expired_lease_is_resumed_and_failure_drops_chunks(database) -> None:
    libraries, docs = LibraryRepository(database), DocumentRepository(database)
    lib = _library(libraries)
    doc = _document(lib.id, 2)
    docs.add(doc, [NewChunk(i, None, (), f"t{i}", 2) for i in range(2)], lease_s=-1)
    assert docs.claim(60) == doc.id  # the lease ran out: another worker takes it
    assert docs.claim(60) is None
    docs.fail(doc.id, "embedding failed", "2026-01-01T00:00:01Z")
    failed = docs.get(doc.id)
    assert failed.status == "error" and failed.error == "embedding failed"
    assert docs.text_of(doc.id) == []
    assert not docs.store_vectors(doc.id, [], 0, 60)  # a failed document takes no vectors


def test_relabel_delete_and_library_removal_are_logged(database) -> None:
    libraries, docs = LibraryRepository(database), DocumentRepository(database)
    lib = _library(libraries)
    a, b = _document(lib.id, 1), _document(lib.id, 1)
    for doc in (a, b):
        docs.add(doc, [NewChunk(0, None, (), "t", 1)], lease_s=60)
    docs.relabel(a.id, "S")
    assert docs.get(a.id).label == "S" and docs.text_of(a.id)[0].label == "S"
    docs.delete(b.id)
    assert docs.text_of(b.id) == []
    assert libraries.stats()[lib.id].documents == 1
    assert libraries.delete(lib.id) == 1
    kinds = [c.kind for c in docs.changes_since(0)]
    assert kinds == ["document-relabelled", "document-removed", "library-removed"]
    assert database.query("SELECT COUNT(*) FROM chunks")[0][0] == 0
