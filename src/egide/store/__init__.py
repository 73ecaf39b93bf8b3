"""Persistence: the only package that speaks SQL. One repository per aggregate."""

from egide.store.db import Database, PostgresDatabase, SqliteDatabase, open_database

__all__ = ["Database", "PostgresDatabase", "SqliteDatabase", "open_database"]
