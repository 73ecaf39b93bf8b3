"""Uploaded files (``/v1/files``, purpose ``fine-tune``): each has an owner organisation
and a label, checked like a knowledge-base document: the label is within the uploader's
clearance and the instance ceiling, and dominates every marking inside the file.

A caller sees, reads and downloads only the files of their organisation's subtree whose
label their clearance dominates; every decision is audited.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass

from egide.audit.events import SpillageRefused as SpillageRefusedEvent
from egide.audit.events import TuningChange
from egide.errors import InvalidRequest, PayloadTooLarge, SpillageRefused
from egide.security.actions import Action
from egide.security.labels import Label, bottom
from egide.security.levels import LevelScheme
from egide.security.markings import parse_marking, render_compact
from egide.security.policy import Resource, decide
from egide.security.spillage import check_input
from egide.store.files import FileRecord, FileRepository
from egide.store.orgs import OrgRepository
from egide.tenancy import Caller
from egide.tenancy.guard import Guard

PURPOSES = ("fine-tune",)


@dataclass(frozen=True)
class FileUpload:
    filename: str
    data: bytes
    purpose: str
    label: str | None = None


class FileService:
    def __init__(
        self,
        files: FileRepository,
        orgs: OrgRepository,
        guard: Guard,
        scheme: LevelScheme,
        max_bytes: int,
    ) -> None:
        self.files = files
        self.orgs = orgs
        self.guard = guard
        self.scheme = scheme
        self.max_bytes = max_bytes

    def label(self, text: str) -> Label:
        return parse_marking(text, self.scheme)

    def _resource(self, record: FileRecord) -> Resource:
        path = self.orgs.get(record.owner_org).lineage if record.owner_org else ()
        return Resource("file", path, self.label(record.label), owner=record.uploaded_by)

    def upload(self, caller: Caller, upload: FileUpload) -> FileRecord:
        if upload.purpose not in PURPOSES:
            raise InvalidRequest(
                f"purpose {upload.purpose!r} is not accepted here; use one of: "
                f"{', '.join(PURPOSES)}",
                param="purpose",
            )
        name = os.path.basename(upload.filename.replace("\\", "/")).strip()
        if not name:
            raise InvalidRequest("the uploaded file needs a file name", param="file")
        if len(upload.data) > self.max_bytes:
            raise PayloadTooLarge(
                f"{name} is {len(upload.data)} bytes, over the limit of {self.max_bytes}; split "
                "it (or raise tuning_max_file_bytes in egide.toml)"
            )
        label = self.label(upload.label) if upload.label else bottom(self.scheme)
        record = FileRecord(
            id=f"file-{secrets.token_hex(12)}",
            filename=name,
            purpose=upload.purpose,
            size_bytes=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            label=render_compact(label),
            owner_org=caller.org_id,
            uploaded_by=caller.principal.user_id,
            num_lines=None,
            created_at=int(time.time()),
        )
        self.guard.check(caller, Action.FILE_WRITE, self._resource(record), f"file:{name}")
        try:
            text = upload.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"{name} is not UTF-8 text; training files are JSON Lines in UTF-8",
                param="file",
            ) from None
        self._markings_within(caller, text, label, name)
        lines = sum(1 for line in text.splitlines() if line.strip())
        stored = self.files.add(FileRecord(**{**record.__dict__, "num_lines": lines}), upload.data)
        self._changed(caller, "file-uploaded", stored, f"{lines} line(s)")
        return stored

    def _markings_within(self, caller: Caller, text: str, label: Label, name: str) -> None:
        findings = check_input(text, label)
        if not findings:
            return
        first = findings[0]
        p = caller.principal
        self.guard.audit.append(
            SpillageRefusedEvent(
                actor=p.user_id,
                org_path="/".join(p.org_path),
                request_id=caller.request_id,
                direction="input",
                level=first.label.level.code,
                position=first.start,
            )
        )
        raise SpillageRefused(
            f"{name}: {first.reason} ({len(findings)} such marking(s)); upload it with a label "
            "that dominates every marking in it (form field 'label' or header X-Egide-Label) "
            "— nothing of it was stored",
            param="label",
        )

    def readable(self, caller: Caller, record: FileRecord) -> bool:
        return decide(
            caller.principal, Action.FILE_READ, self._resource(record), ceiling=self.guard.ceiling
        ).allowed

    def listing(self, caller: Caller, purpose: str | None = None) -> list[FileRecord]:
        return [f for f in self.files.all(purpose) if self.readable(caller, f)]

    def open(self, caller: Caller, file_id: str) -> FileRecord:
        """The file, if the caller may read it (the decision is audited)."""
        record = self.files.get(file_id)
        self.guard.check(caller, Action.FILE_READ, self._resource(record), f"file:{file_id}")
        return record

    def content(self, caller: Caller, file_id: str) -> tuple[FileRecord, bytes]:
        record = self.open(caller, file_id)
        return record, self.files.read(file_id)

    def delete(self, caller: Caller, file_id: str) -> FileRecord:
        record = self.files.get(file_id)
        self.guard.check(caller, Action.FILE_WRITE, self._resource(record), f"file:{file_id}")
        self.files.delete(file_id)
        self._changed(caller, "file-deleted", record, "deleted")
        return record

    def _changed(self, caller: Caller, kind: str, record: FileRecord, summary: str) -> None:
        p = caller.principal
        self.guard.audit.append(
            TuningChange(
                actor=p.user_id,
                org_path="/".join(p.org_path),
                request_id=caller.request_id,
                kind=kind,  # type: ignore[arg-type]
                target=record.id,
                label=record.label,
                sha256=record.sha256,
                summary=summary,
            )
        )
