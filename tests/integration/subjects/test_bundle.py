"""The bundle format without a database: streamed sections hash like their canonical JSON, and
signed documents verify only as signed."""

from __future__ import annotations

import hashlib

import orjson

from strongroom.audit.signing import Ed25519Signer
from strongroom.bundle import (
    ArraySection,
    canonical,
    section_hash,
    sign_document,
    verify_bundle,
    verify_document,
)


def test_array_section_streams_its_canonical_json_in_bounded_chunks() -> None:
    items = [{"n": i, "text": "é" * 200, "z": None, "a": [1.5, True]} for i in range(1000)]
    section = ArraySection()
    chunks = [chunk for item in items if (chunk := section.add(item))]
    tail, digest = section.close()
    streamed = b"".join([*chunks, tail])
    assert len(chunks) > 3
    assert max(len(c) for c in chunks) < 70 * 1024
    assert streamed == canonical(items)
    assert digest == hashlib.sha256(streamed).hexdigest() == section_hash(items)
    assert section.count == 1000
    empty = ArraySection()
    assert empty.close() == (b"[]", section_hash([]))


async def test_signed_documents() -> None:
    signer = Ed25519Signer.from_master_key(b"k" * 31 + b"x")
    keys = {signer.key_id: signer.public_key}
    receipt = await sign_document({"subject": "ab", "records_deleted": 3}, signer)
    assert verify_document(receipt, keys) is None
    assert verify_document({**receipt, "records_deleted": 4}, keys)
    assert verify_document({**receipt, "extra": 1}, keys)
    assert verify_document({k: v for k, v in receipt.items() if k != "signature"}, keys)
    assert "not trusted" in (verify_document(receipt, {}) or "")
    # The same signature bytes in a non-canonical base64 spelling are refused.
    text = receipt["signature"]
    assert text.endswith("==")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(text[-3])
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[last ^ 1]
    assert verify_document({**receipt, "signature": text[:-3] + sibling + "=="}, keys)


def test_malformed_bundles_are_reported() -> None:
    assert verify_bundle(b"", {})[0].startswith("not valid JSON")
    assert verify_bundle(b"[]", {}) == ["not a JSON object"]
    problems = verify_bundle(orjson.dumps({"records": [], "extra": 1}), {})
    assert "unexpected member 'extra'" in problems
    assert "missing section 'manifest'" in problems
