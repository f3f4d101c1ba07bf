"""Cutting the beginning of the chain for retention, keeping a signed anchor.

Retention may delete the oldest sealed events, as a prefix of the chain: the anchor then records
the position and hash of the last deleted event, and verification starts there. The part being
deleted is verified first (evidence of tampering is never deleted with the events), and the anchor
is signed, so moving it forward to hide deleted events needs the signing key.
"""

from __future__ import annotations

from datetime import UTC, datetime

from strongroom.audit.chain import Anchor, read_anchor, read_head
from strongroom.audit.sealer import register_signing_key
from strongroom.audit.signing import CheckpointSigner, PublicKeys, anchor_message
from strongroom.audit.store import DbConnection
from strongroom.audit.verify import PAGE_SIZE, ChainBroken, walk_chain

_SET_ANCHOR = """
INSERT INTO audit_anchor (id, position, hash, cut_at, key_id, signature)
VALUES (1, $1, $2, $3, $4, $5)
ON CONFLICT (id) DO UPDATE
SET position = EXCLUDED.position, hash = EXCLUDED.hash, cut_at = EXCLUDED.cut_at,
    key_id = EXCLUDED.key_id, signature = EXCLUDED.signature
"""
# The events first: the guard trigger lets a sealed event go, and it is sealed while its link is.
_DELETE_EVENTS = (
    "DELETE FROM audit_events e USING audit_chain c WHERE e.seq = c.event_seq AND c.position <= $1"
)


async def cut_chain(
    connection: DbConnection,
    through: int,
    signer: CheckpointSigner,
    public_keys: PublicKeys,
    *,
    page_size: int = PAGE_SIZE,
) -> Anchor:
    """Delete the sealed events at positions up to ``through`` and anchor the chain there.

    Raises :class:`~strongroom.audit.verify.ChainBroken` (deleting nothing) when that part of
    the chain does not verify, and `ValueError` when ``through`` is not after the current anchor
    or not yet sealed. Holds the chain head's lock, so sealing waits for the cut.
    """
    async with connection.transaction():
        head = await read_head(connection, for_update=True)
        anchor = await read_anchor(connection)
        start = 0 if anchor is None else anchor.position
        if through <= start:
            raise ValueError(f"the chain already starts after position {start}")
        if through > head.position:
            raise ValueError(f"position {through} is not sealed yet (the head is {head.position})")
        report = await walk_chain(connection, public_keys, through=through, page_size=page_size)
        if report.first_problem is not None:
            raise ChainBroken(report.first_problem)
        digest = await connection.fetchval(
            "SELECT hash FROM audit_chain WHERE position = $1", through
        )
        cut_at = datetime.now(UTC)
        signature = await signer.sign(anchor_message(through, digest, cut_at, signer.key_id))
        await register_signing_key(connection, signer)
        await connection.execute(_DELETE_EVENTS, through)
        await connection.execute("DELETE FROM audit_chain WHERE position <= $1", through)
        await connection.execute(_SET_ANCHOR, through, digest, cut_at, signer.key_id, signature)
    return Anchor(through, bytes(digest), cut_at, signer.key_id, signature)
