"""Grounded answers: the prompt assembled from authorised chunks, and their citations.

The sources go in a system message, numbered; the model is told to answer only from them,
to cite them as [n], and to say so when they do not hold the answer. When no chunk is
relevant enough, no model is called at all: the answer says that nothing was found.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from egide.rag.retrieval import Found
from egide.security.labels import Label, join_all
from egide.store.documents import DocumentRecord

NOTHING_FOUND = (
    "Aucun passage pertinent n'a été trouvé dans les bibliothèques consultées : je ne peux "
    "pas répondre à partir de ces documents. / No relevant passage was found in the "
    "libraries searched: I cannot answer from these documents."
)

INSTRUCTIONS = (
    "Answer the user's question using only the numbered sources below, in the language of "
    "the question. Cite the sources you use as [1], [2]. If the sources do not contain the "
    "answer, say that the documents do not say, and do not guess.\n"
    "Réponds uniquement à partir des sources numérotées ci-dessous, dans la langue de la "
    "question, en citant les sources [1], [2]. Si elles ne contiennent pas la réponse, "
    "dis-le sans inventer."
)


@dataclass(frozen=True)
class Grounding:
    sources: list[Found]
    citations: list[dict[str, Any]]
    system: str
    label: Label  # the join of every source's label


def relevant(found: list[Found], min_similarity: float) -> list[Found]:
    """Chunks worth showing the model. A question is answerable when at least one chunk is
    semantically close (cosine ≥ ``min_similarity``); then keyword-only hits come along."""
    if not any((f.hit.vector_score or 0.0) >= min_similarity for f in found):
        return []
    return [
        f
        for f in found
        if (f.hit.vector_score or 0.0) >= min_similarity or f.hit.vector_score is None
    ]


def ground(sources: list[Found], documents: dict[str, DocumentRecord]) -> Grounding:
    """The system message and citations for ``sources`` (at least one)."""
    blocks = []
    citations = []
    for number, f in enumerate(sources, start=1):
        chunk = f.chunk
        doc = documents.get(chunk.document_id)
        name = doc.name if doc else chunk.document_id
        where = f", p. {chunk.page}" if chunk.page else ""
        heading = f" — {' > '.join(chunk.headings)}" if chunk.headings else ""
        blocks.append(f"[{number}] {name}{where}{heading}\n{chunk.text}")
        citations.append(
            {
                "index": number,
                "document_id": chunk.document_id,
                "document_name": name,
                "library_id": chunk.library_id,
                "chunk_id": chunk.id,
                "position": chunk.position,
                "page": chunk.page,
                "label": chunk.label,
                "score": round(f.hit.score, 6),
            }
        )
    system = INSTRUCTIONS + "\n\n" + "\n\n".join(blocks)
    return Grounding(sources, citations, system, join_all(f.label for f in sources))
