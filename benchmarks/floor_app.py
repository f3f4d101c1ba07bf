"""The floors under a masked read: the same route served by less than Strongroom.

    FLOOR_RUNG=read FLOOR_DSN=postgresql://... \\
        python -m granian --interface asgi --factory --workers 1 floor_app:create_app

(run from ``benchmarks/``; ``benchmarks/suite.py`` starts it with the flags it gives the ceiling).
``GET /v1/collections/{collection}/records/{record_id}`` answers JSON, doing only what its rung
names, so the steps between the ceiling (``hello_asgi.py``) and Strongroom's masked read show
what each part of the request costs:

- ``framework``: a BlackSheep application and router, the path parameter echoed back;
- ``read``: plus the record's row, by primary key, through an asyncpg pool made as Strongroom
  makes its own (``create_pool``: JSON through orjson, no reset query), its data returned as is;
- ``audited``: plus a durable audit event for the read, through Strongroom's group-commit writer
  on its own connection, as a masked read waits for its event.

What is left between ``audited`` and the masked read is Strongroom's own request path: the API
key and its rate, the request context and observability hooks, the schema, the subject's key,
decryption and masking, and the problem+json and security headers.
"""

from __future__ import annotations

import os
import uuid

import orjson
from blacksheep import Application, Content, Request, Response, Router

from strongroom.audit.events import AuditEvent
from strongroom.audit.group_commit import GroupCommitWriter, connector
from strongroom.settings import Settings
from strongroom.store.pool import create_pool

RUNGS = ("framework", "read", "audited")
_SELECT = "SELECT id, tenant_id, data, version, updated_at FROM records WHERE id = $1"


def _json(value: object, status: int = 200) -> Response:
    return Response(status, None, Content(b"application/json", orjson.dumps(value)))


def create_app() -> Application:
    rung = os.environ.get("FLOOR_RUNG", "framework")
    if rung not in RUNGS:
        raise SystemExit(f"FLOOR_RUNG must be one of {', '.join(RUNGS)}, not {rung!r}")
    dsn = os.environ.get("FLOOR_DSN", "")
    router = Router()
    app = Application(router=router, show_error_details=False)
    state: dict[str, object] = {}

    async def start(application: Application) -> None:
        if rung == "framework":
            return
        settings = Settings.from_env({"STRONGROOM_DB_POOL_MAX": "20"})
        state["pool"] = await create_pool(dsn, settings, application="strongroom-floor")
        if rung == "audited":
            writer = GroupCommitWriter(connector(dsn), timeout=settings.audit_timeout)
            await writer.start()
            state["writer"] = writer

    async def stop(application: Application) -> None:
        if (writer := state.get("writer")) is not None:
            assert isinstance(writer, GroupCommitWriter)
            await writer.close()
        if (pool := state.get("pool")) is not None:
            await pool.close()  # type: ignore[attr-defined]

    app.on_start += start
    app.on_stop += stop

    @router.get("/")
    async def ready(request: Request) -> Response:
        return _json({"rung": rung})

    @router.get("/v1/collections/{collection}/records/{record_id}")
    async def read(request: Request, collection: str, record_id: str) -> Response:
        if rung == "framework":
            return _json({"id": record_id})
        row = await state["pool"].fetchrow(_SELECT, uuid.UUID(record_id))  # type: ignore[attr-defined]
        if row is None:
            return _json({"status": 404}, 404)
        if rung == "audited":
            event = AuditEvent(
                "record.read",
                "success",
                str(row["tenant_id"]),
                "floor",
                resource=f"{collection}/{record_id}",
            )
            await state["writer"].emit(event)  # type: ignore[attr-defined]
        return _json(
            {
                "id": record_id,
                "version": row["version"],
                "updated_at": row["updated_at"].isoformat(),
                "data": row["data"],
            }
        )

    return app
