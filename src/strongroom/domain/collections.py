"""Collections: named schemas that say which fields a record has and how each is protected."""

from __future__ import annotations

from strongroom.audit.events import AuditEvent, CallContext
from strongroom.domain.access import Principal
from strongroom.domain.errors import BadRequest, NotFound
from strongroom.domain.ports import CollectionRepository, StoredCollection
from strongroom.domain.schema import check_schema_change, parse_collection, valid_name


class CollectionService:
    def __init__(self, collections: CollectionRepository) -> None:
        self._collections = collections

    async def put(
        self, principal: Principal, context: CallContext, name: str, body: object
    ) -> tuple[StoredCollection, bool]:
        """Create or replace a collection schema (admin)."""
        principal.require("admin")
        check_collection_name(name)
        schema = parse_collection(name, body)
        current = await self._collections.get(principal.tenant_id, name)
        if current is not None:
            check_schema_change(
                current.schema, schema, await self._collections.has_records(current.id)
            )
        event = AuditEvent.of(
            context,
            "collection.put",
            resource=f"collections/{name}",
            fields=tuple(sorted(schema.fields)),
        )
        return await self._collections.put(principal.tenant_id, schema, event)

    async def get(self, principal: Principal, name: str) -> StoredCollection:
        principal.require("records:read")
        check_collection_name(name)
        found = await self._collections.get(principal.tenant_id, name)
        if found is None:
            raise NotFound(f"no collection named {name!r}")
        return found


def check_collection_name(name: str) -> None:
    if not valid_name(name):
        raise BadRequest("collection names are 1-63 of a-z, 0-9, _ (letter first)")
