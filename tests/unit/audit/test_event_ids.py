"""Event ids and request ids: random, well-formed, and usable wherever a uuid.UUID is."""

from __future__ import annotations

import re
import uuid

from strongroom.audit.events import AuditEvent, new_event_id
from strongroom.http.context import new_request_id


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:50]:
        assert isinstance(value, uuid.UUID)
        assert value.version == 4
        assert value.variant == uuid.RFC_4122
        parsed = uuid.UUID(str(value))
        assert parsed == value
        assert hash(parsed) == hash(value)
        assert parsed.int == value.int


def test_every_event_gets_its_own_id() -> None:
    first = AuditEvent(action="record.read", outcome="success", tenant_id=None, actor=None)
    second = AuditEvent(action="record.read", outcome="success", tenant_id=None, actor=None)
    assert first.id != second.id
    assert first.id.version == 4


def test_request_ids_are_random_hex_unless_a_good_one_is_offered() -> None:
    made = {new_request_id(None) for _ in range(2_000)}
    assert len(made) == 2_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", value) for value in made)
    assert new_request_id(b"req-42") == "req-42"
    assert re.fullmatch(r"[0-9a-f]{32}", new_request_id(b"bad id\n"))
    assert re.fullmatch(r"[0-9a-f]{32}", new_request_id(b"\xff"))
