"""The composition root: ``create_app(settings)`` wires middleware, routes and the lifespan.

Nothing happens at import time. Pools, clients and services are created when the application
starts (BlackSheep's ``on_start`` runs before handlers and middleware are finalised, so routes
are installed there with their dependencies) and closed when it stops.
"""

from __future__ import annotations

import logging
from typing import Any

from blacksheep import Application, Request, Response
from blacksheep.server.routing import RouteMatch, Router

from strongroom import __version__, privacy
from strongroom.audit.group_commit import GroupCommitWriter, connector
from strongroom.audit.retention import RetentionJob, parse_policies, retention_state
from strongroom.audit.sealer import AuditSealer
from strongroom.audit.verify import chain_status
from strongroom.cache.key_evictions import RedisKeyEvictions
from strongroom.cache.ratelimit import RateLimiter
from strongroom.cache.redis import create_redis
from strongroom.crypto import DekCache
from strongroom.crypto.providers import open_key_provider
from strongroom.domain.collections import CollectionService
from strongroom.domain.keys import KeyService, subject_of
from strongroom.domain.records import RecordService
from strongroom.domain.rotation import KeyRotation, RewrapJob
from strongroom.domain.subjects import SubjectService
from strongroom.http import openapi
from strongroom.http.errors import HttpProblem
from strongroom.http.middleware import (
    AuthenticationMiddleware,
    RequestContextMiddleware,
)
from strongroom.http.routes import audit as audit_routes
from strongroom.http.routes import holds, probes, records, subjects
from strongroom.http.routes import keys as keys_routes
from strongroom.http.routes import privacy as privacy_routes
from strongroom.http.routing import RouteTable
from strongroom.observability.instruments import Observability, pool_details, writer_details
from strongroom.observability.logging import flush_access_lines
from strongroom.settings import Settings
from strongroom.store.changes import ChangeListener, InvalidatedCache
from strongroom.store.collections import CollectionCache, PgCollectionRepository, collection_key
from strongroom.store.holds import LegalHoldRepository
from strongroom.store.keystore import PgKeyStore
from strongroom.store.pool import autovacuum_enabled, create_pool
from strongroom.store.record_retention import RecordRetentionJob
from strongroom.store.records import PgRecordRepository
from strongroom.store.rotation import RotationStore
from strongroom.store.subjects import PgSubjectRepository
from strongroom.store.tenants import PrincipalCache, TenantRepository

log = logging.getLogger("strongroom")

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def create_app(settings: Settings) -> Application:
    """Build the application for ``settings``; it connects to its dependencies on start."""
    if settings.database_url is None or settings.redis_url is None:
        raise RuntimeError(
            "create_app needs STRONGROOM_DATABASE_URL and STRONGROOM_REDIS_URL; "
            "`strongroom serve` provides embedded ones in development"
        )
    router = Router()
    app = Application(router=router, show_error_details=False)
    table = RouteTable(router)
    readiness = probes.Readiness()
    resources: dict[str, Any] = {}
    observability = Observability(settings)  # metrics, tracing, access log: what is switched on
    _track_route_templates(router)
    router.fallback = _fallback(router)

    async def start(application: Application) -> None:
        log.info(
            "starting strongroom %s (privacy implementation: %s)",
            __version__,
            privacy.IMPLEMENTATION,
        )
        assert settings.database_url is not None
        assert settings.redis_url is not None
        await observability.start()  # first, so that pools and clients are instrumented
        readiness.about.update(version=__version__, implementation=privacy.IMPLEMENTATION)
        pool = await create_pool(settings.database_url, settings, application="strongroom")
        resources["pool"] = pool
        keystore_dsn = settings.keystore_dsn or settings.database_url
        key_pool = (
            pool
            if keystore_dsn == settings.database_url
            else await create_pool(keystore_dsn, settings, application="strongroom-keys")
        )
        resources["key_pool"] = key_pool
        redis = create_redis(settings.redis_url, settings)
        resources["redis"] = redis
        observability.watch_pool(pool, "data")
        if key_pool is not pool:
            observability.watch_pool(key_pool, "keys")
        observability.watch_redis(redis)

        # Reads and reveals wait for their event to be durable; concurrent requests share a
        # commit (group commit) on the writer's own connection.
        writer = GroupCommitWriter(
            connector(
                settings.database_url,
                timeout=settings.db_timeout,
                application="strongroom-audit",
                server_settings={"statement_timeout": str(settings.statement_timeout_ms)},
            ),
            timeout=settings.audit_timeout,
            batch_size=settings.audit_batch_size,
            linger=settings.audit_linger,
            queue_size=settings.audit_queue_size,
            command_timeout=settings.db_timeout,
        )
        await writer.start()  # starts unhealthy, without raising, if PostgreSQL is down
        resources["audit"] = writer
        audit = observability.audit_sink(writer)  # what services emit is counted and traced
        # Once: a passphrase is stretched here; a Vault provider logs in and starts renewing.
        key_provider = await open_key_provider(settings)
        resources["key_provider"] = key_provider
        dek_cache: DekCache[Any, Any] = DekCache(
            settings.dek_cache_size, settings.dek_cache_ttl, group=subject_of
        )
        observability.watch_dek_cache(dek_cache)
        key_store = PgKeyStore(key_pool)
        keys = KeyService(key_store, key_provider.wrapper, dek_cache)
        # API keys and schemas are cached per process; database triggers NOTIFY every process
        # when one changes (a revocation evicts the key everywhere at once).
        changes = ChangeListener(settings.database_url)
        await changes.start()
        resources["changes"] = changes
        principal_cache: PrincipalCache = InvalidatedCache(
            changes, "api_key", str, settings.auth_cache_ttl, clear_on=("tenant",)
        )
        collection_cache: CollectionCache = InvalidatedCache(
            changes, "collection", collection_key, settings.schema_cache_ttl
        )
        tenants = TenantRepository(pool, principal_cache)
        collections_repo = PgCollectionRepository(pool, collection_cache)
        record_service = RecordService(
            collections_repo, PgRecordRepository(pool), keys, audit, settings.page_size_max
        )

        readiness.checks["database"] = lambda: pool.fetchval("SELECT 1")
        if key_pool is not pool:
            readiness.checks["keystore"] = lambda: key_pool.fetchval("SELECT 1")
        readiness.checks["redis"] = redis.ping
        readiness.checks["audit"] = _audit_check(writer)
        readiness.details["audit"] = writer_details(writer)
        vacuuming = await autovacuum_enabled(pool)
        if vacuuming is False:
            log.warning(
                "PostgreSQL runs with autovacuum or track_counts off: tables are never analyzed "
                "and query plans degrade as they grow (the audit search reads a tenant's whole "
                "trail); turn autovacuum on, or run VACUUM (ANALYZE) on a schedule"
            )
        readiness.details["database"] = pool_details(pool, autovacuum=vacuuming)
        readiness.checks.update(key_provider.checks)

        records.install(
            table, CollectionService(collections_repo), record_service, settings.max_body_bytes
        )
        privacy_routes.install(table, settings.max_body_bytes)
        # Every replica runs a sealer and a retention job; one of each leads (advisory locks).
        signer = key_provider.signer
        sealer = AuditSealer(settings.database_url, signer)
        await sealer.start()
        resources["sealer"] = sealer
        policies = parse_policies(settings.audit_retention)
        retention = RetentionJob(
            settings.database_url,
            policies,
            signer,
            key_provider.trusted_keys,
            settings.audit_retention_interval,
        )
        await retention.start()
        resources["retention"] = retention

        async def chain_report(tenant_id: str) -> dict[str, Any]:
            async with pool.acquire() as connection:
                return {
                    "chain": await chain_status(connection),
                    "retention": await retention_state(connection, policies, tenant_id),
                }

        audit_routes.install(
            table,
            pool,
            keys,
            audit,
            settings.page_size_max,
            report_extras=chain_report,
            chain_keys=key_provider.trusted_keys,
        )
        holds.install(table, LegalHoldRepository(pool), keys, settings.max_body_bytes)
        # Master key rotation: every replica helps re-wrap data keys in the background.
        key_rotation = KeyRotation(RotationStore(key_pool), keys.wrapper)
        observability.watch_key_rotation(key_rotation.status)
        rewrap_job = RewrapJob(key_rotation)
        await rewrap_job.start()
        resources["rewrap_job"] = rewrap_job
        keys_routes.install(table, key_rotation, audit, record_service)
        # Erasures tell every replica to drop the subject's cached keys (see domain/subjects.py).
        key_evictions = RedisKeyEvictions(redis, keys.forget_subject, dek_cache.clear)
        await key_evictions.start()
        resources["key_evictions"] = key_evictions
        subject_service = SubjectService(
            PgSubjectRepository(pool),
            keys,
            key_store,
            LegalHoldRepository(pool),
            audit,
            signer,
            key_evictions,
        )
        subjects.install(table, subject_service)
        record_retention = RecordRetentionJob(pool)  # collections' retention_days, hourly
        await record_retention.start()
        resources["record_retention"] = record_retention
        probes.install(table, readiness)
        observability.install_routes(table)  # GET /metrics, unless it has a port of its own
        openapi.install(table)
        router.apply_routes()  # routes added after BlackSheep applied the registered ones

        # Two layers: the request's front (request id, problem+json, security headers, and the
        # span, metrics and access line as hooks), then the API key and its rate.
        application.middlewares.append(RequestContextMiddleware(observability.request_hooks()))
        limiter = None
        if settings.rate_limit > 0:
            limiter = RateLimiter(redis, settings.rate_limit, settings.rate_burst)
        application.middlewares.append(AuthenticationMiddleware(tenants, audit, limiter))

    async def stop(application: Application) -> None:
        readiness.draining = True
        changes = resources.pop("changes", None)
        if changes is not None:
            await changes.stop()
        rewrap_job = resources.pop("rewrap_job", None)
        if rewrap_job is not None:
            await rewrap_job.stop()
        audit = resources.pop("audit", None)
        if audit is not None:
            # Every queued event is written before the pools close: nothing acknowledged is lost.
            await audit.close(grace=settings.audit_close_grace)
        retention = resources.pop("retention", None)
        if retention is not None:
            await retention.stop()
        sealer = resources.pop("sealer", None)
        if sealer is not None:
            await sealer.stop()  # seals what is committed, signs a last checkpoint
        key_provider = resources.pop("key_provider", None)
        if key_provider is not None:
            await key_provider.close()  # after the sealer: Vault Transit may sign its last
        record_retention = resources.pop("record_retention", None)
        if record_retention is not None:
            await record_retention.stop()
        key_evictions = resources.pop("key_evictions", None)
        if key_evictions is not None:
            await key_evictions.stop()
        redis = resources.pop("redis", None)
        if redis is not None:
            await redis.aclose()
        key_pool = resources.pop("key_pool", None)
        pool = resources.pop("pool", None)
        if key_pool is not None and key_pool is not pool:
            await key_pool.close()
        if pool is not None:
            await pool.close()
        await observability.stop()  # last: spans of the shutdown are exported too
        flush_access_lines()

    app.on_start += start
    app.on_stop += stop
    return app


def create_app_from_env() -> Application:
    """Granian's factory target: settings from the environment, logging configured."""
    from strongroom.observability.logging import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)


def _audit_check(audit: GroupCommitWriter) -> Any:
    async def check() -> bool:
        return audit.healthy

    return check


def _track_route_templates(router: Router) -> None:
    """Remember which route template matched, for logs, metrics and audit resources."""
    match = router.get_match

    def get_match(request: Request) -> Any:
        try:
            found = match(request)
        except UnicodeDecodeError:
            # Route values are decoded as UTF-8: a path that is not UTF-8 goes to the fallback,
            # which refuses it through the middleware like any other bad request.
            found = RouteMatch(router.fallback, None)  # type: ignore[arg-type]  # no values
        request.route_template = (  # type: ignore[attr-defined]
            found.pattern.decode() if found is not None else "*"
        )
        return found

    router.get_match = get_match  # type: ignore[method-assign]


def _matches(router: Router, method: str, path: bytes) -> bool:
    found = router.get_match_by_method_and_path(method, path)
    return found is not None and found.pattern != b"*"


def _fallback(router: Router) -> Any:
    async def not_found(request: Request) -> Response:
        path: bytes = request._path  # type: ignore[attr-defined]  # raw path
        if not path.isascii():
            try:
                path.decode("utf-8")
            except UnicodeDecodeError:
                raise HttpProblem(400, "bad-request", "the request path is not UTF-8") from None
        allowed = [
            method
            for method in _METHODS
            if method != request.method and _matches(router, method, request._path)  # type: ignore[attr-defined]  # raw path
        ]
        if allowed:
            raise HttpProblem(
                405,
                "method-not-allowed",
                f"{request.method} is not supported here; use {', '.join(allowed)}",
                headers=[(b"Allow", ", ".join(allowed).encode())],
            )
        raise HttpProblem(404, "not-found", "no such endpoint; see /docs")

    return not_found
