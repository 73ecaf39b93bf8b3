"""The spillage corpus (French and English marking variants, generated) driven through the
API: each refused on input or withheld on output, and no refusal leaks its text into the
audit log."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from egide.gateway.labels import LabelGuard
from egide.security.labels import Clearance, Label
from egide.security.levels import FRENCH
from egide.security.policy import Principal, Role
from egide.store.keys import KeyRecord
from egide.tenancy import Caller
from factories import app_client, fake_settings

sys.path.insert(0, str(Path(__file__).parents[1] / "security"))
from test_spillage import CANARIES as ALL_CANARIES
from test_spillage import generate

# Words that appear only in the corpus texts (digits would match timestamps).
CANARIES = tuple(c for c in ALL_CANARIES if c.isalpha())

NP, DR = FRENCH.level("NP"), FRENCH.level("DR")
CORPUS = [(text, label) for text, label in generate(FRENCH) if label.level > DR]


def test_the_corpus_is_large() -> None:
    assert len(CORPUS) >= 200


def test_every_variant_is_refused_on_input_without_leaking(tmp_path) -> None:
    settings = fake_settings(tmp_path, ceiling="DR")

    async def go() -> list[int]:
        async with app_client(settings) as (client, _key):
            runtime = client._transport.app.state.runtime
            statuses = []
            for text, _label in CORPUS:
                r = await client.post(
                    "/v1/chat/completions",
                    json={"model": "echo", "messages": [{"role": "user", "content": text}]},
                    headers={"X-Egide-Label": "DR"},
                )
                statuses.append(r.status_code)
                if r.status_code == 422:
                    message = r.json()["error"]["message"]
                    assert not any(c in message for c in CANARIES), message
            runtime.audit.flush()
            rows = runtime.audit.db.query("SELECT payload FROM audit_records")
            log = "\n".join(r["payload"] for r in rows)
            for canary in CANARIES:
                assert canary not in log
            return statuses

    statuses = asyncio.run(go())
    refused = [s for s in statuses if s == 422]
    assert len(refused) == len(CORPUS), {s: statuses.count(s) for s in set(statuses)}


class _Audit:
    def __init__(self) -> None:
        self.events: list[object] = []

    def append(self, event: object) -> None:
        self.events.append(event)


def test_every_variant_is_withheld_on_output_whole_and_streamed() -> None:
    audit = _Audit()
    guard = LabelGuard(FRENCH, Label(FRENCH.level("TS")), audit)  # type: ignore[arg-type]
    principal = Principal("u", ("org",), frozenset({Role.USER}), Clearance(DR, frozenset(), "FRA"))
    caller = Caller(principal, KeyRecord("k", "egk_", "user", "u", None, None, None, None), "o")
    for text, _label in CORPUS:
        assert guard.output_filter(caller).whole(text).startswith("[Égide: this answer")
        stream = guard.output_filter(caller)
        sent = "".join(stream.feed(text[i : i + 5]) for i in range(0, len(text), 5))
        sent += stream.finish()
        assert stream.withheld, text
        assert not any(w in sent for w in ("SECRET", "Secret", "secret", "CONFIDENTIEL")), text
    assert len(audit.events) == 2 * len(CORPUS)
    assert not any(c in repr(e) for e in audit.events for c in CANARIES)
