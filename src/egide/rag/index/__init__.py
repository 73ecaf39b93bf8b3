"""In-process hybrid (BM25 + vector) index with the clearance filter inside the search.

Every chunk belongs to a partition (library id, label key); a search is given the
partitions (and optionally the documents) the caller may read and never looks outside
them. See ``hybrid`` for the whole, ``rows`` for the readable set, ``vectors`` and
``graph`` for the vector plans, ``bm25`` for the inverted index.
"""

from egide.rag.index.hybrid import HybridIndex
from egide.rag.index.records import Entry, Hit, Partition, SearchMode

__all__ = ["Entry", "Hit", "HybridIndex", "Partition", "SearchMode"]
