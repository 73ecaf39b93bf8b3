"""Build everything a serving process needs from :class:`~egide.config.Settings`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from egide.audit.checkpoints import Signer, load_or_create_signing_key
from egide.audit.events import AdminChange
from egide.audit.log import AuditLog
from egide.backends import Backend, backend_class
from egide.config import Settings
from egide.errors import ConfigError, EgideError
from egide.gateway.accounting import Accounting
from egide.gateway.finetuned import FineTunedModels
from egide.gateway.knowledge import build_knowledge
from egide.gateway.labels import LabelGuard
from egide.gateway.metrics import Metrics
from egide.gateway.service import Gateway
from egide.gateway.tuning import build_runner
from egide.registry import ArtefactRegistry
from egide.security.labels import Label
from egide.security.levels import LevelScheme, scheme_by_name
from egide.security.markings import parse_marking
from egide.store import Database, open_database
from egide.store.artefacts import ArtefactRepository
from egide.store.files import FileRepository
from egide.store.jobs import JobRepository
from egide.store.keys import KeyRepository
from egide.store.orgs import OrgRepository
from egide.store.quotas import QuotaRepository
from egide.store.usage import UsageRepository
from egide.store.users import UserRepository
from egide.tenancy import Authenticator, ensure_admin_key
from egide.tenancy.guard import Guard
from egide.tuning.files import FileService
from egide.tuning.jobs import JobService
from egide.tuning.runner import JobRunner

Progress = Callable[[str, float], None]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    gateway: Gateway
    auth: Authenticator
    new_admin_key: str | None
    scheme: LevelScheme
    ceiling: Label
    audit: AuditLog
    files: FileService
    jobs: JobService
    runner: JobRunner
    finetuned: FineTunedModels

    async def start(self, progress: Progress | None = None) -> None:
        for backend in self.gateway.backends.values():
            await backend.start(progress)
        await self.finetuned.sync()
        await self.gateway.knowledge.start()
        self.runner.start()

    async def close(self) -> None:
        await self.runner.close()
        await self.gateway.knowledge.close()
        for backend in self.gateway.backends.values():
            await backend.close()
        self.gateway.accounting.close()  # writes what is still queued
        self.audit.close()  # flushes and signs a final checkpoint
        self.audit_db.close()
        self.db.close()

    @property
    def audit_db(self) -> Database:
        return self.audit.db


def build_runtime(settings: Settings, progress: Progress | None = None) -> Runtime:
    """Open the state, verify every artefact, and construct (not yet start) the backends."""
    settings.home.mkdir(parents=True, exist_ok=True)
    db = open_database(settings.home, settings.database_url)
    keys = KeyRepository(db)
    scheme, ceiling = label_policy(settings)
    new_key = ensure_admin_key(settings.home, keys)
    registry = ArtefactRegistry(settings, ArtefactRepository(db))
    backends: dict[str, Backend] = {}
    for model in settings.all_models():
        artefact = registry.prepare(model, progress)
        backends[model.id] = backend_class(model.backend)(model, settings, artefact)
    audit = AuditLog(
        # Its own connection: the writer thread never waits on the request path's lock.
        open_database(settings.home, settings.database_url),
        Signer(load_or_create_signing_key(settings.home)),
        checkpoint_every=settings.audit_checkpoint_every,
    )
    auth = Authenticator(keys, UserRepository(db), OrgRepository(db), scheme, ceiling, audit)
    _record_configuration(settings, audit)
    gateway = Gateway(
        backends,
        Metrics(),
        LabelGuard(scheme, ceiling, audit),
        Accounting(QuotaRepository(db), UsageRepository(db), audit),
        build_knowledge(settings, db, scheme, ceiling, audit, backends),
    )
    guard = Guard(audit, ceiling)
    files = FileService(
        FileRepository(db, settings.home / "files"),
        OrgRepository(db),
        guard,
        scheme,
        settings.tuning_max_file_bytes,
    )
    jobs = JobService(
        JobRepository(db),
        files,
        OrgRepository(db),
        guard,
        lambda: [b.model.id for b in backends.values() if b.fine_tunable and not b.model.lora],
    )
    finetuned = FineTunedModels(
        settings,
        JobRepository(db),
        registry,
        backends,
        gateway.guard,
        OrgRepository(db),
    )
    runner = build_runner(settings, db, backends, jobs, finetuned)
    return Runtime(
        settings,
        db,
        gateway,
        auth,
        new_key,
        scheme,
        ceiling,
        audit,
        files,
        jobs,
        runner,
        finetuned,
    )


def label_policy(settings: Settings) -> tuple[LevelScheme, Label]:
    """The configured level scheme and the instance ceiling, or a clear ConfigError."""
    try:
        scheme = scheme_by_name(settings.label_scheme)
        return scheme, parse_marking(settings.ceiling, scheme)
    except EgideError as exc:
        raise ConfigError(f"invalid label settings: {exc.message}") from exc


def _record_configuration(settings: Settings, audit: AuditLog) -> None:
    """Every start records the configuration it runs with (by digest, plus what matters
    for security), so that a change between two starts is on the record."""
    data = settings.model_dump(mode="json")
    digest = hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()
    models = ", ".join(f"{m.id}@{m.label or 'lowest'}" for m in settings.all_models())
    audit.append(
        AdminChange(
            actor="egide-serve",
            kind="config",
            target="settings",
            summary=f"started with settings sha256 {digest}: ceiling {settings.ceiling}, "
            f"scheme {settings.label_scheme}, models {models}",
        )
    )
