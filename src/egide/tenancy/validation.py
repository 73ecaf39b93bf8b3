"""Input checks of the administration, each failing with a message that says how to fix it."""

from __future__ import annotations

import re
from datetime import date

from egide.errors import InvalidRequest
from egide.security.labels import Label, label_gap
from egide.security.levels import LevelScheme
from egide.security.markings import parse_marking
from egide.security.policy import Role

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_NATIONALITY = re.compile(r"^[A-Za-z]{3}$")
GROUP_COLUMNS = {
    "day": "day",
    "org": "org_id",
    "org_id": "org_id",
    "user": "user_id",
    "user_id": "user_id",
    "key": "key_id",
    "key_id": "key_id",
    "model": "model",
}


def username(text: str) -> str:
    if not _USERNAME.match(text):
        raise InvalidRequest(
            f"username {text!r} must be 1-64 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
            param="username",
        )
    return text


def nationality(text: str) -> str:
    if not _NATIONALITY.match(text):
        raise InvalidRequest(
            f"nationality {text!r} must be an ISO-3166 alpha-3 country code of 3 letters "
            "(e.g. FRA, DEU)",
            param="nationality",
        )
    return text.upper()


def roles(values: list[str] | tuple[str, ...]) -> tuple[Role, ...]:
    if not values:
        raise InvalidRequest("give at least one role (usually 'user')", param="roles")
    accepted = ", ".join(r.value for r in Role)
    found: list[Role] = []
    for value in values:
        try:
            role = Role(value)
        except ValueError:
            raise InvalidRequest(
                f"unknown role {value!r}; the roles are {accepted}", param="roles"
            ) from None
        if role not in found:
            found.append(role)
    return tuple(found)


def clearance(text: str, scheme: LevelScheme, ceiling: Label) -> Label:
    """The clearance marking as a label (without releasability: nationality says that),
    refused when it is above the instance ceiling."""
    try:
        label = parse_marking(text, scheme)
    except InvalidRequest as exc:
        raise InvalidRequest(f"clearance: {exc.message}", param="clearance") from None
    label = Label(label.level, label.compartments, None)
    within = Label(ceiling.level, ceiling.compartments or label.compartments, None)
    gap = label_gap(within, label)
    if gap is not None:
        raise InvalidRequest(
            f"clearance {text!r} is above the instance ceiling {ceiling.level.code} "
            f"({gap[1]}); this instance cannot clear anyone higher",
            param="clearance",
        )
    return label


def day(text: str | None, param: str) -> str | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise InvalidRequest(
            f"{param} {text!r} is not a date: use YYYY-MM-DD (e.g. 2025-01-31)", param=param
        ) from None


def group_by(values: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    columns: list[str] = []
    for value in values:
        column = GROUP_COLUMNS.get(value.strip())
        if column is None:
            raise InvalidRequest(
                f"cannot group usage by {value!r}; use any of day, org, user, key, model "
                "(comma-separated)",
                param="group_by",
            )
        if column not in columns:
            columns.append(column)
    return tuple(columns) or ("day",)


def subject(text: str) -> tuple[str, str]:
    """``org:<id>`` or ``key:<id>`` → (kind, id)."""
    kind, _, ident = text.partition(":")
    if kind not in ("org", "key") or not ident:
        raise InvalidRequest(
            f"quota subject {text!r} must be 'org:<organisation id>' or 'key:<key id>'",
            param="subject",
        )
    return kind, ident


def limit(name: str, value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or value < 0):
        raise InvalidRequest(f"{name} must be zero or a positive integer (or null)", param=name)
    return value
