"""Every action the policy engine decides on, each with a stable kebab-case name.

``actions_reference()`` renders ``docs/actions.md``; a test fails when an action has no
description, so the reference cannot drift from the code.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    """What a principal asks to do. Values are stable: they are written to the audit log."""

    CHAT = "chat"
    COMPLETE = "complete"
    EMBED = "embed"
    LIST_MODELS = "list-models"
    USE_MODEL = "use-model"
    ORG_CREATE = "org-create"
    ORG_UPDATE = "org-update"
    ORG_DELETE = "org-delete"
    ORG_LIST = "org-list"
    USER_CREATE = "user-create"
    USER_UPDATE = "user-update"
    USER_DELETE = "user-delete"
    USER_LIST = "user-list"
    KEY_CREATE = "key-create"
    KEY_REVOKE = "key-revoke"
    KEY_LIST = "key-list"
    QUOTA_SET = "quota-set"
    QUOTA_READ = "quota-read"
    USAGE_READ = "usage-read"
    AUDIT_READ = "audit-read"
    AUDIT_EXPORT = "audit-export"
    CONFIG_READ = "config-read"
    LIBRARY_CREATE = "library-create"
    LIBRARY_READ = "library-read"
    LIBRARY_WRITE = "library-write"
    LIBRARY_MANAGE = "library-manage"
    FILE_READ = "file-read"
    FILE_WRITE = "file-write"


DESCRIPTIONS: dict[Action, str] = {
    Action.CHAT: "Send a chat completion request (`/v1/chat/completions`) to a model.",
    Action.COMPLETE: "Send a text completion request (`/v1/completions`) to a model.",
    Action.EMBED: "Compute embeddings (`/v1/embeddings`) with a model.",
    Action.LIST_MODELS: "List the models the caller may use (`/v1/models`).",
    Action.USE_MODEL: "Use one named model, whatever the endpoint (checked per request).",
    Action.ORG_CREATE: "Create an organisation below an existing one in the tree.",
    Action.ORG_UPDATE: "Rename an organisation or change its settings.",
    Action.ORG_DELETE: "Delete an organisation (below the administrator's own scope).",
    Action.ORG_LIST: "List organisations of the tree (an org-admin sees their subtree).",
    Action.USER_CREATE: "Create a user in an organisation, with roles and a clearance.",
    Action.USER_UPDATE: "Change a user's roles, clearance or organisation.",
    Action.USER_DELETE: "Delete a user; their keys stop working.",
    Action.USER_LIST: "List users, their roles and clearances (an org-admin sees their subtree).",
    Action.KEY_CREATE: "Issue an API key (hashed at rest, scoped, expiring).",
    Action.KEY_REVOKE: "Revoke an API key at once.",
    Action.KEY_LIST: "List API keys (their ids and scopes, never the secrets).",
    Action.QUOTA_SET: "Set request and token quotas on an organisation or a user.",
    Action.QUOTA_READ: "Read the quotas set on an organisation or an API key.",
    Action.USAGE_READ: "Read usage accounting (requests, tokens) of a user or an organisation.",
    Action.AUDIT_READ: "Read audit records.",
    Action.AUDIT_EXPORT: "Export audit records and checkpoints for offline verification.",
    Action.CONFIG_READ: "Read the running configuration (secrets redacted).",
    Action.LIBRARY_CREATE: "Create a knowledge library owned by an organisation, with a ceiling.",
    Action.LIBRARY_READ: (
        "Read a library: list its documents, search it, ground a chat answer on it "
        "(each chunk is still filtered by the caller's clearance)."
    ),
    Action.LIBRARY_WRITE: "Upload, relabel or delete documents of a library.",
    Action.LIBRARY_MANAGE: "Change a library's settings or delete it with everything in it.",
    Action.FILE_READ: (
        "List, read or download an uploaded file (a training set) of one's organisation "
        "subtree, within one's clearance."
    ),
    Action.FILE_WRITE: "Upload or delete a file (a training set), with its label.",
}

INFERENCE_ACTIONS = frozenset(
    {Action.CHAT, Action.COMPLETE, Action.EMBED, Action.LIST_MODELS, Action.USE_MODEL}
)
MODEL_SCOPED_ACTIONS = frozenset({Action.CHAT, Action.COMPLETE, Action.EMBED, Action.USE_MODEL})
KNOWLEDGE_ACTIONS = frozenset(
    {Action.LIBRARY_CREATE, Action.LIBRARY_READ, Action.LIBRARY_WRITE, Action.LIBRARY_MANAGE}
)
TUNING_ACTIONS = frozenset({Action.FILE_READ, Action.FILE_WRITE})
# Granted inside the subtree a library is shared with, or that owns a file.
SHARED_ACTIONS = frozenset(
    {Action.LIBRARY_READ, Action.LIBRARY_WRITE, Action.FILE_READ, Action.FILE_WRITE}
)
ADMIN_ACTIONS = frozenset(
    a for a in Action if a not in INFERENCE_ACTIONS | KNOWLEDGE_ACTIONS | TUNING_ACTIONS
)
TENANCY_ACTIONS = frozenset(
    {
        Action.ORG_CREATE,
        Action.ORG_UPDATE,
        Action.ORG_DELETE,
        Action.ORG_LIST,
        Action.USER_CREATE,
        Action.USER_UPDATE,
        Action.USER_DELETE,
        Action.USER_LIST,
        Action.KEY_CREATE,
        Action.KEY_REVOKE,
        Action.KEY_LIST,
        Action.QUOTA_SET,
        Action.QUOTA_READ,
        Action.USAGE_READ,
    }
)
# The auditor reads everything and changes nothing.
AUDITOR_ACTIONS = frozenset(
    {
        Action.AUDIT_READ,
        Action.AUDIT_EXPORT,
        Action.USAGE_READ,
        Action.ORG_LIST,
        Action.USER_LIST,
        Action.QUOTA_READ,
    }
)


def describe(action: Action) -> str:
    return DESCRIPTIONS[action]


def actions_reference() -> str:
    """The Markdown of ``docs/actions.md``: every action, its kind and its description."""
    lines = [
        "# Actions",
        "",
        "Every request is decided by the policy engine as one of these actions. The names are",
        "stable: they appear in audit records. Generated from `egide.security.actions`.",
        "",
        "| action | kind | description |",
        "|---|---|---|",
    ]
    for action in Action:
        kind = (
            "inference"
            if action in INFERENCE_ACTIONS
            else "knowledge"
            if action in KNOWLEDGE_ACTIONS
            else "tuning"
            if action in TUNING_ACTIONS
            else "admin"
        )
        lines.append(f"| `{action.value}` | {kind} | {DESCRIPTIONS[action]} |")
    return "\n".join(lines) + "\n"
