"""JSON bodies of the admin API. Unknown fields and wrong types are refused (400)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OrgCreate(_Body):
    id: str = Field(description="lowercase id, e.g. 'dga'")
    name: str
    parent: str | None = None


class UserCreate(_Body):
    username: str
    org: str
    nationality: str = Field(description="ISO-3166 alpha-3, e.g. FRA")
    clearance: str = Field(description="a marking, e.g. 'S//ALPHA' or 'DIFFUSION RESTREINTE'")
    roles: list[str] = Field(default_factory=lambda: ["user"])
    admin_scope: str | None = None


class KeyCreate(_Body):
    user_id: str
    name: str | None = None
    models: list[str] | None = None
    expires_in_days: int | None = None
    expires_at: datetime | None = Field(default=None, strict=False)


class QuotaLimits(_Body):
    requests_per_min: int | None = None
    tokens_per_min: int | None = None
    tokens_per_day: int | None = None
