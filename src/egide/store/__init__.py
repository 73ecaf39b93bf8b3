"""Persistence: the only package that speaks SQL. One repository per aggregate."""

from egide.store.db import Database, open_database

__all__ = ["Database", "open_database"]
