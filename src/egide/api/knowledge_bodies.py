"""Request bodies of the libraries and search API (Mistral's fields, plus Égide's)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from egide.rag.libraries import LibrarySpec, Sharing
from egide.rag.service import SearchQuery


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SharingBody(_Body):
    org_id: str | None = Field(default=None, description="Subtree shared with; null: everyone")
    compartments: list[str] = Field(default_factory=list)

    def sharing(self) -> Sharing:
        return Sharing(self.org_id, frozenset(self.compartments))


class LibraryBody(_Body):
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    chunk_size: Annotated[int, Field(ge=256, le=32768)] | None = None
    owner_org: str | None = None
    ceiling: str | None = None
    readers: SharingBody | None = None
    writers: SharingBody | None = None

    def spec(self) -> LibrarySpec:
        return LibrarySpec(
            name=self.name,
            description=self.description,
            chunk_size=self.chunk_size,
            owner_org=self.owner_org,
            ceiling=self.ceiling,
            readers=self.readers.sharing() if self.readers else None,
            writers=self.writers.sharing() if self.writers else None,
        )


class DocumentPatch(_Body):
    name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    attributes: dict[str, str | int | float | bool | None] | None = None
    label: str | None = Field(default=None, description="Relabel the document (a marking)")


class SearchFilters(_Body):
    document_ids: list[str] | None = None
    mime_types: list[str] | None = None
    attributes: dict[str, str | int | float | bool | None] | None = None


class SearchBody(_Body):
    query: Annotated[str, Field(min_length=1, max_length=4000)]
    library_ids: list[str] = Field(default_factory=list)
    top_k: Annotated[int, Field(ge=1, le=100)] = 10
    mode: Literal["hybrid", "vector", "bm25"] = "hybrid"
    filters: SearchFilters | None = None

    def search(self) -> SearchQuery:
        f = self.filters or SearchFilters()
        return SearchQuery(
            self.query,
            tuple(self.library_ids),
            self.top_k,
            self.mode,
            tuple(f.document_ids) if f.document_ids is not None else None,
            tuple(f.mime_types) if f.mime_types is not None else None,
            tuple(sorted((f.attributes or {}).items())),
        )
