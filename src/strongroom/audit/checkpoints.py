"""Signed checkpoints: reading them, exporting them to be kept elsewhere, reading an export back.

An export is JSON lines, one checkpoint each, in position order::

    {"position": 1000, "hash": "<64 hex>", "signed_at": "2025-01-01T00:00:00.000001+00:00",
     "key_id": "<16 hex>", "signature": "<base64>", "public_key": "-----BEGIN PUBLIC KEY-----..."}

Kept outside the database, it still catches a rewrite of both the events and the checkpoint table
(see :func:`strongroom.audit.verify.verify_checkpoint_export`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from strongroom.audit.chain import HASH_BYTES
from strongroom.audit.signing import load_public_key_pem, public_key_pem
from strongroom.audit.store import DbConnection

_PAGE = (
    "SELECT c.position, c.hash, c.signed_at, c.key_id, c.signature, k.public_key "
    "FROM audit_checkpoints c LEFT JOIN audit_signing_keys k ON k.key_id = c.key_id "
    "WHERE c.position > $1 ORDER BY c.position LIMIT $2"
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the chain's hash at ``position`` is ``hash``."""

    position: int
    hash: bytes
    signed_at: datetime
    key_id: str
    signature: bytes
    public_key: bytes | None = None  # as published; verification never trusts it blindly

    def as_dict(self) -> dict[str, object]:
        return {
            "position": self.position,
            "hash": self.hash.hex(),
            "signed_at": self.signed_at.astimezone(UTC).isoformat(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "public_key": None if self.public_key is None else public_key_pem(self.public_key),
        }


def _checkpoint(row: Any) -> Checkpoint:
    public = row["public_key"]
    return Checkpoint(
        row["position"],
        bytes(row["hash"]),
        row["signed_at"],
        row["key_id"],
        bytes(row["signature"]),
        None if public is None else bytes(public),
    )


async def iter_checkpoints(
    connection: DbConnection, *, after: int = 0, page_size: int = 1_000
) -> AsyncIterator[Checkpoint]:
    """Every checkpoint after position ``after``, in position order, a page at a time."""
    position = after
    while True:
        rows = await connection.fetch(_PAGE, position, page_size)
        for row in rows:
            yield _checkpoint(row)
        if len(rows) < page_size:
            return
        position = rows[-1]["position"]


async def export_checkpoints(connection: DbConnection) -> list[dict[str, object]]:
    """Every checkpoint as a JSON-ready dict (see the module docstring), in position order."""
    return [checkpoint.as_dict() async for checkpoint in iter_checkpoints(connection)]


async def write_checkpoint_export(connection: DbConnection, out: Any) -> int:
    """Write the export as JSON lines to the binary file ``out``; returns the number written."""
    count = 0
    async for checkpoint in iter_checkpoints(connection):
        out.write(orjson.dumps(checkpoint.as_dict()) + b"\n")
        count += 1
    return count


class ExportFormatError(ValueError):
    """A checkpoint export line is not what :func:`export_checkpoints` writes."""


def parse_checkpoint_export(lines: Iterable[str | bytes]) -> list[Checkpoint]:
    """Read an export back (blank lines ignored), sorted by position."""
    found: list[Checkpoint] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            found.append(_parse_line(orjson.loads(line)))
        except KeyError as exc:
            raise ExportFormatError(f"checkpoint export line {number}: no {exc}") from None
        except (orjson.JSONDecodeError, TypeError, ValueError, binascii.Error) as exc:
            raise ExportFormatError(f"checkpoint export line {number}: {exc}") from None
    found.sort(key=lambda checkpoint: checkpoint.position)
    return found


def _parse_line(item: Any) -> Checkpoint:
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    position = item["position"]
    if isinstance(position, bool) or not isinstance(position, int) or position < 1:
        raise ValueError("position must be a positive integer")
    digest = bytes.fromhex(item["hash"])
    if len(digest) != HASH_BYTES:
        raise ValueError(f"hash must be {HASH_BYTES} bytes")
    signed_at = datetime.fromisoformat(item["signed_at"])
    if signed_at.tzinfo is None:
        raise ValueError("signed_at must carry a UTC offset")
    key_id = item["key_id"]
    if not isinstance(key_id, str):
        raise ValueError("key_id must be text")
    pem = item.get("public_key")
    return Checkpoint(
        position,
        digest,
        signed_at,
        key_id,
        base64.b64decode(item["signature"], validate=True),
        None if pem is None else load_public_key_pem(pem),
    )
