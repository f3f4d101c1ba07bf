"""Signed documents that leave the service: subject export bundles and erasure receipts.

**Canonical JSON** is ``orjson.dumps(value, option=OPT_SORT_KEYS)``: compact, keys sorted, UTF-8.
Times are ISO 8601 strings, so a document read back and rendered again gives the same bytes.

**Export bundle** (``GET /v1/subjects/{id}/export``), one JSON object streamed in this order::

    {"records": [...], "schemas": {...}, "access_history": [...], "manifest": {...}}

Each section is written in canonical form, so the bytes of a section as sent are its canonical
JSON and its SHA-256 is computed while it streams; the manifest comes last and holds:

    format        "strongroom.subject-export/v1"
    tenant_id     the tenant
    subject       the subject's keyed pseudonym (hex), never the subject id itself
    generated_at  when the export was taken
    counts        {"records": n, "schemas": n, "access_history": n}
    sections      {"records": sha256 hex, "schemas": ..., "access_history": ...}
    algorithm     "ed25519";  key_id: 16 hex digits of SHA-256 of the raw public key
    signature     base64 Ed25519 signature over the canonical manifest without ``signature``

The signing key is the service key that also signs audit checkpoints (``strongroom audit
public-key`` prints it). A bundle is valid when every section hashes to the manifest's value, the
counts match and the signature verifies: :func:`verify_bundle`, or ``strongroom verify-bundle``.

Checking a bundle with standard tools (jq 1.7+, OpenSSL 3)::

    strongroom audit public-key > service.pem
    jq -j -c -S '.manifest | del(.signature)' bundle.json > manifest.bin
    jq -r '.manifest.signature' bundle.json | base64 -d > manifest.sig
    openssl pkeyutl -verify -pubin -inkey service.pem -rawin -in manifest.bin -sigfile manifest.sig
    jq -j -c -S '.records' bundle.json | sha256sum        # == .manifest.sections.records

(The section recipe matches byte for byte for the usual values; jq may render very large or
exotic numbers differently from orjson, so ``strongroom verify-bundle`` is the reference.)

**Erasure receipt** (``DELETE /v1/subjects/{id}``): a flat JSON object with ``format``
``"strongroom.erasure-receipt/v1"``, signed the same way (:func:`verify_document`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from strongroom.audit.signing import ALGORITHM, CheckpointSigner

BUNDLE_FORMAT = "strongroom.subject-export/v1"
RECEIPT_FORMAT = "strongroom.erasure-receipt/v1"
SECTIONS = ("records", "schemas", "access_history")
MANIFEST = "manifest"
_FLUSH_BYTES = 64 * 1024


def canonical(value: Any) -> bytes:
    """The canonical JSON of ``value`` (what hashes and signatures cover)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


class ArraySection:
    """Streams a JSON array in canonical form and hashes it as it goes (bounded memory)."""

    __slots__ = ("_buffer", "_hash", "_size", "count")

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self._buffer: list[bytes] = [b"["]
        self._size = 1
        self.count = 0

    def add(self, item: Any) -> bytes | None:
        """Append ``item``; returns a chunk to send once enough bytes are buffered."""
        piece = canonical(item) if self.count == 0 else b"," + canonical(item)
        self.count += 1
        self._hash.update(piece)
        self._buffer.append(piece)
        self._size += len(piece)
        return self.flush() if self._size >= _FLUSH_BYTES else None

    def flush(self) -> bytes:
        chunk = b"".join(self._buffer)
        self._buffer.clear()
        self._size = 0
        return chunk

    def close(self) -> tuple[bytes, str]:
        """The rest of the array (with its closing bracket) and the section's SHA-256 (hex)."""
        self._hash.update(b"]")
        self._buffer.append(b"]")
        return self.flush(), self._hash.hexdigest()


def section_hash(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()


async def sign_document(document: Mapping[str, Any], signer: CheckpointSigner) -> dict[str, Any]:
    """``document`` with ``algorithm``, ``key_id`` and ``signature`` (over the rest) added."""
    signed = {**document, "algorithm": ALGORITHM, "key_id": signer.key_id}
    signature = await signer.sign(canonical(signed))
    signed["signature"] = base64.b64encode(signature).decode("ascii")
    return signed


def verify_document(document: object, public_keys: Mapping[str, bytes]) -> str | None:
    """None when ``document`` carries a valid signature by a trusted key; otherwise why not."""
    if not isinstance(document, dict):
        return "not a JSON object"
    signature_text = document.get("signature")
    key_id = document.get("key_id")
    if not isinstance(signature_text, str) or not isinstance(key_id, str):
        return "no signature or key_id"
    if document.get("algorithm") != ALGORITHM:
        return f"unsupported algorithm {document.get('algorithm')!r}"
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except (binascii.Error, ValueError):
        return "the signature is not base64"
    # Only the canonical encoding is accepted: base64 has spare bits that decode alike.
    if base64.b64encode(signature).decode("ascii") != signature_text:
        return "the signature is not in canonical base64"
    public = public_keys.get(key_id)
    if public is None:
        return f"signed by key {key_id!r}, which is not trusted"
    unsigned = {name: value for name, value in document.items() if name != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, canonical(unsigned))
    except (InvalidSignature, ValueError):
        return f"the signature does not verify under key {key_id!r}"
    return None


def verify_bundle(raw: bytes, public_keys: Mapping[str, bytes]) -> list[str]:
    """Every problem found in a saved export bundle; an empty list means it is valid."""
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [f"not valid JSON: {exc}"]
    if not isinstance(bundle, dict):
        return ["not a JSON object"]
    expected = {*SECTIONS, MANIFEST}
    problems = [f"unexpected member {name!r}" for name in sorted(set(bundle) - expected)]
    problems += [f"missing section {name!r}" for name in sorted(expected - set(bundle))]
    if problems:
        return problems
    manifest = bundle[MANIFEST]
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    why = verify_document(manifest, public_keys)
    if why is not None:
        problems.append(f"manifest: {why}")
    if manifest.get("format") != BUNDLE_FORMAT:
        problems.append(f"manifest: unknown format {manifest.get('format')!r}")
    hashes = manifest.get("sections")
    counts = manifest.get("counts")
    if not isinstance(hashes, dict) or not isinstance(counts, dict):
        return [*problems, "manifest: sections or counts missing"]
    for name in SECTIONS:
        section = bundle[name]
        kind = dict if name == "schemas" else list
        if not isinstance(section, kind):
            problems.append(f"{name}: expected a JSON {'object' if kind is dict else 'array'}")
            continue
        if section_hash(section) != hashes.get(name):
            problems.append(f"{name}: content does not match the manifest's SHA-256")
        if len(section) != counts.get(name):
            problems.append(f"{name}: {len(section)} entries, the manifest says {counts.get(name)}")
    return problems
