"""Prometheus metrics, defined once here, in base units and with low-cardinality labels.

One :class:`Metrics` per application. Under Granian's worker processes ``strongroom serve``
points ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) at a directory it
wiped at start; every worker writes its values there and whichever worker answers a scrape reads
them all. Gauges say how workers combine (``livesum``: the sum over live workers); a worker
removes its live gauges when it stops and sweeps those of workers that died without stopping.

Request metrics are recorded by :class:`~strongroom.observability.middleware.RequestObserver`;
dependencies report through small hooks: the audit writer's ``on_flush``, a query logger on every
pooled asyncpg connection, a timer around the Redis client's ``execute_command``. Counters kept
by other objects (DEK cache, audit writer) are sampled every few seconds and on each scrape.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client import values as _values

from strongroom.observability.tracing import untraced

if TYPE_CHECKING:
    import asyncpg

    from strongroom.audit.events import AuditEvent

log = logging.getLogger("strongroom.metrics")

# Seconds. 0.2 is the latency objective (p95 < 200 ms): the SLO rules read that bucket.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SIZE_BUCKETS = (100.0, 1_000.0, 10_000.0, 100_000.0, 1_000_000.0, 10_000_000.0)
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
SQL_OPERATIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "COPY", "BEGIN", "COMMIT", "SET", "LOCK"}
)
SAMPLE_INTERVAL = 5.0
_STATEMENTS_REMEMBERED = 1024
_CHILDREN_REMEMBERED = 4096
ROTATION_INTERVAL = 60.0


def prepare_multiprocess_dir(configured: str | None) -> str:
    """The directory for multiprocess values, emptied: values of a previous run must not add up
    with this one's. A configured directory is wiped; otherwise a fresh one is made."""
    if configured is None:
        return tempfile.mkdtemp(prefix="strongroom-metrics-")
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return str(path)


class Metrics:
    """Every metric of the service, and the registry a scrape reads."""

    def __init__(self, version: str, implementation: str, multiprocess_dir: str | None) -> None:
        # prometheus_client chose its mode when imported (PROMETHEUS_MULTIPROC_DIR, set by
        # ``serve`` for Granian's workers); a directory without that mode is ignored.
        multi = multiprocess_dir is not None and _values.ValueClass is not _values.MutexValue
        self.multiprocess_dir = multiprocess_dir if multi else None
        # Multiprocess values live in files; the objects are registered nowhere and a scrape
        # reads the directory. A single process registers them in its own registry.
        self.registry = CollectorRegistry()
        own = None if multi else self.registry
        if multi:
            _multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)  # type: ignore[no-untyped-call]  # unannotated module
        else:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)

        def gauge(name: str, doc: str, labels: Iterable[str] = (), mode: str = "livesum") -> Gauge:
            return Gauge(name, doc, labels, registry=own, multiprocess_mode=mode)  # type: ignore[arg-type]  # a Literal in the stubs

        self.build_info = gauge(
            "strongroom_build_info",
            "Always 1: the version and the privacy scanner implementation (native or python)",
            ("version", "implementation"),
            mode="max",
        )
        self.build_info.labels(version, implementation).set(1)

        # HTTP (OpenTelemetry's semantic conventions, Prometheus naming)
        self.request_duration = Histogram(
            "http_server_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status code",
            ("method", "route", "status"),
            buckets=LATENCY_BUCKETS,
            registry=own,
        )
        self.active_requests = gauge(
            "http_server_active_requests", "HTTP requests being answered", ("method",)
        )
        self.request_size = Histogram(
            "http_server_request_body_size_bytes",
            "Request body sizes (Content-Length), by method and route template",
            ("method", "route"),
            buckets=SIZE_BUCKETS,
            registry=own,
        )
        self.response_size = Histogram(
            "http_server_response_body_size_bytes",
            "Response body sizes, by method and route template",
            ("method", "route"),
            buckets=SIZE_BUCKETS,
            registry=own,
        )

        self.ready = gauge(
            "strongroom_readiness_ready",
            "1 when the last readiness probe answered 200, 0 when 503; the lowest over workers",
            mode="livemin",
        )

        # PostgreSQL
        self.pool_connections = gauge(
            "db_client_connection_count",
            "Pooled PostgreSQL connections by pool and state (idle, used)",
            ("pool", "state"),
        )
        self.pool_max = gauge(
            "db_client_connection_max", "Most connections a pool may open", ("pool",)
        )
        self.pool_wait = Histogram(
            "db_client_connection_wait_time_seconds",
            "Time to obtain a connection from the pool",
            ("pool",),
            buckets=FAST_BUCKETS,
            registry=own,
        )
        self.query_duration = Histogram(
            "db_client_operation_duration_seconds",
            "PostgreSQL statement durations by pool and SQL operation",
            ("pool", "operation", "outcome"),
            buckets=FAST_BUCKETS,
            registry=own,
        )
        # Redis
        self.redis_duration = Histogram(
            "strongroom_redis_command_duration_seconds",
            "Redis command durations by command",
            ("command", "outcome"),
            buckets=FAST_BUCKETS,
            registry=own,
        )

        # Audit pipeline
        self.audit_queue_depth = gauge(
            "strongroom_audit_queue_depth", "Audit events waiting for the group commit"
        )
        self.audit_healthy = gauge(
            "strongroom_audit_writer_healthy",
            "1 when the audit writer commits and has room; the lowest over live workers",
            mode="livemin",
        )
        self.audit_batch_size = Histogram(
            "strongroom_audit_batch_size",
            "Events per group commit",
            buckets=BATCH_BUCKETS,
            registry=own,
        )
        self.audit_flush_duration = Histogram(
            "strongroom_audit_flush_duration_seconds",
            "Time to write and commit one audit batch",
            buckets=FAST_BUCKETS,
            registry=own,
        )
        self.audit_written = Counter(
            "strongroom_audit_events_written", "Audit events committed", registry=own
        )
        self.audit_refused = Counter(
            "strongroom_audit_events_refused",
            "Audit events not written; the caller got 503 (reason: rejected = queue full or "
            "writer stopped, timed_out, failed)",
            ("reason",),
            registry=own,
        )
        self.audit_flush_failures = Counter(
            "strongroom_audit_flush_failures", "Failed audit batch writes (retried)", registry=own
        )
        self.audit_emitted = Counter(
            "strongroom_audit_events",
            "Audit events confirmed through the group-commit writer, by action and outcome",
            ("action", "outcome"),
            registry=own,
        )

        # Business
        self.reveals = Counter(
            "strongroom_reveals",
            "Records revealed in plaintext, by tenant and purpose",
            ("tenant", "purpose"),
            registry=own,
        )
        self.exports = Counter(
            "strongroom_exports",
            "Exports (kind: subject = data subject bundle, audit = audit trail)",
            ("tenant", "kind"),
            registry=own,
        )
        self.erasures = Counter(
            "strongroom_erasures",
            "Subject erasures (outcome: erased, refused = under legal hold)",
            ("tenant", "outcome"),
            registry=own,
        )
        self.key_rotations = Counter(
            "strongroom_key_rotations", "Master key rotations started", registry=own
        )
        self.key_rotated = gauge(
            "strongroom_master_key_rotated_timestamp_seconds",
            "When the latest master key rotation started (Unix time)",
            mode="max",
        )
        self.keys_to_rewrap = gauge(
            "strongroom_master_key_rewrap_pending",
            "Data keys still wrapped by an older master key version",
            mode="max",
        )
        self.rate_limited = Counter(
            "strongroom_rate_limited",
            "Requests refused by the rate limiter, by tenant",
            ("tenant",),
            registry=own,
        )
        self.dek_cache = Counter(
            "strongroom_dek_cache_lookups",
            "Data key cache lookups (result: hit, miss); a miss unwraps with the master key",
            ("result",),
            registry=own,
        )
        if multi:
            self._process = _ProcessSampler(gauge)

        self._pools: dict[int, str] = {}
        self._pool_objects: dict[str, asyncpg.Pool] = {}
        self._query_children: dict[tuple[str, str, str], Any] = {}
        self._redis_children: dict[tuple[str, str], Any] = {}
        self._event_children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._samplers: list[Callable[[], None]] = []
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()
        self._async_samplers: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None

    # -- exposition --------------------------------------------------------------------------

    content_type = CONTENT_TYPE_LATEST

    async def render(self) -> bytes:
        """The exposition text; the sampled values of this process are refreshed first."""
        self.sample()
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        # Reading every worker's files is file I/O: keep it off the event loop.
        return await asyncio.to_thread(generate_latest, self.registry)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.multiprocess_dir is not None:
            _sweep_dead_workers(self.multiprocess_dir)
        self._task = asyncio.create_task(untraced(self._run()), name="metrics-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for pool_id in list(self._pools):
            _ACQUIRE_HOOKS.pop(pool_id, None)
        self._pools.clear()
        self._pool_objects.clear()
        if self.multiprocess_dir is not None:
            # This worker's live gauges go; its counters stay (totals never go backwards).
            _multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]  # unannotated module

    async def _run(self) -> None:
        last_slow = 0.0
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL)
            try:
                self.sample()
                if time.monotonic() - last_slow >= ROTATION_INTERVAL:
                    last_slow = time.monotonic()
                    for sampler in self._async_samplers:
                        await sampler()
            except Exception:  # a failing sampler must not stop the others next time
                log.exception("metrics sampling failed")

    def sample(self) -> None:
        for sampler in self._samplers:
            sampler()
        if self.multiprocess_dir is not None:
            self._process.sample()

    # -- hooks -------------------------------------------------------------------------------

    def watch_pool(self, pool: asyncpg.Pool, name: str) -> None:
        """Connection counts, wait time and query durations of ``pool``."""
        if name in self._pool_objects:
            return
        self._pools[id(pool)] = name
        self._pool_objects[name] = pool
        self.pool_max.labels(name).set(pool.get_max_size())
        children: dict[tuple[str, bool], Any] = {}  # statement text, ok -> its histogram
        idle = self.pool_connections.labels(name, "idle")
        used = self.pool_connections.labels(name, "used")
        wait = self.pool_wait.labels(name)

        def sample() -> None:
            size = pool.get_size()
            free = pool.get_idle_size()
            idle.set(free)
            used.set(size - free)

        def on_query(record: Any) -> None:
            key = (record.query, record.exception is None)
            child = children.get(key)
            if child is None:
                words = record.query.split(None, 1)
                operation = words[0].upper() if words else ""
                if operation not in SQL_OPERATIONS:
                    operation = "OTHER"
                labels = (name, operation, "ok" if key[1] else "error")
                child = self._query_children.get(labels)
                if child is None:
                    child = self._query_children[labels] = self.query_duration.labels(*labels)
                if len(children) < _STATEMENTS_REMEMBERED:  # statements are few; text is not
                    children[key] = child
            child.observe(record.elapsed)

        hooked = self._hooked

        def on_acquire(connection: Any, waited: float) -> None:
            wait.observe(waited)
            raw = connection._con  # the pooled connection behind asyncpg's proxy
            if raw not in hooked:
                hooked.add(raw)
                raw.add_query_logger(on_query)

        self._samplers.append(sample)
        _install_acquire_hook()
        _ACQUIRE_HOOKS[id(pool)] = on_acquire

    def watch_redis(self, client: Any) -> None:
        """Time every command of a ``redis.asyncio.Redis`` client."""
        execute = client.execute_command
        children = self._redis_children
        duration = self.redis_duration

        async def execute_command(*args: Any, **options: Any) -> Any:
            started = time.perf_counter()
            outcome = "error"
            try:
                result = await execute(*args, **options)
                outcome = "ok"
                return result
            finally:
                key = (str(args[0]).upper() if args else "", outcome)
                child = children.get(key)
                if child is None:
                    child = children[key] = duration.labels(*key)
                child.observe(time.perf_counter() - started)

        client.execute_command = execute_command

    def watch_audit_writer(self, writer: Any) -> None:
        """Batch sizes and flush durations from ``on_flush``; depth and refusals sampled."""
        batch = self.audit_batch_size
        flush = self.audit_flush_duration
        written = self.audit_written

        def on_flush(count: int, seconds: float) -> None:
            batch.observe(count)
            flush.observe(seconds)
            written.inc(count)

        writer.on_flush = on_flush
        seen = {"rejected": 0, "timed_out": 0, "failed": 0, "flush_failures": 0}
        refused = {
            "rejected": self.audit_refused.labels("rejected"),
            "timed_out": self.audit_refused.labels("timed_out"),
            "failed": self.audit_refused.labels("failed"),
        }

        def sample() -> None:
            self.audit_queue_depth.set(len(writer))
            self.audit_healthy.set(1 if writer.healthy else 0)
            for reason, counter in refused.items():
                now = getattr(writer, "events_" + reason)
                if now > seen[reason]:
                    counter.inc(now - seen[reason])
                seen[reason] = now
            failures = writer.flush_failures
            if failures > seen["flush_failures"]:
                self.audit_flush_failures.inc(failures - seen["flush_failures"])
            seen["flush_failures"] = failures

        self._samplers.append(sample)

    def watch_dek_cache(self, cache: Any) -> None:
        hits = self.dek_cache.labels("hit")
        misses = self.dek_cache.labels("miss")
        seen = [cache.hits, cache.misses]

        def sample() -> None:
            now = (cache.hits, cache.misses)
            if now[0] > seen[0]:
                hits.inc(now[0] - seen[0])
            if now[1] > seen[1]:
                misses.inc(now[1] - seen[1])
            seen[0], seen[1] = now

        self._samplers.append(sample)

    def watch_key_rotation(self, status: Callable[[], Awaitable[Any]]) -> None:
        """``status()`` of :class:`~strongroom.domain.rotation.KeyRotation`, once a minute."""

        async def sample() -> None:
            current = await status()
            rotation = current.rotation
            if rotation is not None:
                self.key_rotated.set(rotation.started_at.timestamp())
            self.keys_to_rewrap.set(
                sum(n for v, n in current.keys_by_version.items() if v != current.active_version)
            )

        self._async_samplers.append(sample)

    def audit_event(self, event: AuditEvent) -> None:
        """Count a confirmed audit event, and the business action it records."""
        action = event.action
        outcome = event.outcome
        self._child(self.audit_emitted, action, outcome).inc()
        if outcome != "success" and action != "ratelimit.exceeded":
            return
        tenant = event.tenant_id or ""
        if action == "record.reveal":
            self._child(self.reveals, tenant, event.purpose or "").inc()
        elif action == "subject.export":
            self._child(self.exports, tenant, "subject").inc()
        elif action == "audit.export":
            self._child(self.exports, tenant, "audit").inc()
        elif action == "key.rotate":
            self.key_rotations.inc()
        elif action == "ratelimit.exceeded":
            self._child(self.rate_limited, tenant).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: ``labels`` checks and locks on every call."""
        key = (id(metric), labels)
        child = self._event_children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._event_children) < _CHILDREN_REMEMBERED:
                self._event_children[key] = child
        return child


# -- asyncpg: time to acquire, and a query logger on each connection ----------------------------

# Pool id -> hook. asyncpg has no acquire hook and its Pool has slots, so the acquire context is
# wrapped once per process, as tracing instrumentations do; pools nobody watches pass straight on.
_ACQUIRE_HOOKS: dict[int, Callable[[Any, float], None]] = {}
_acquire_installed = False


def _install_acquire_hook() -> None:
    global _acquire_installed
    if _acquire_installed:
        return
    from asyncpg.pool import PoolAcquireContext

    original = PoolAcquireContext.__aenter__

    async def __aenter__(self: Any) -> Any:
        hook = _ACQUIRE_HOOKS.get(id(self.pool))
        if hook is None:
            return await original(self)
        started = time.perf_counter()
        connection = await original(self)
        hook(connection, time.perf_counter() - started)
        return connection

    PoolAcquireContext.__aenter__ = __aenter__  # type: ignore[method-assign]
    _acquire_installed = True


# -- multiprocess housekeeping ------------------------------------------------------------------


def _sweep_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that died without stopping (killed, crashed)."""
    pids: set[int] = set()
    for path in glob.glob(os.path.join(directory, "gauge_live*_*.db")):
        suffix = Path(path).stem.rsplit("_", 1)[-1]
        if suffix.isdigit():
            pids.add(int(suffix))
    for pid in pids:
        if not _alive(pid):
            _multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]  # unannotated module


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ProcessSampler:
    """Process and GC metrics per worker in multiprocess mode, where collectors cannot run in
    the worker that answers the scrape: copied into ``liveall`` gauges (a ``pid`` label)."""

    def __init__(self, gauge: Callable[..., Gauge]) -> None:
        # In a registry of their own that nobody scrapes: collected by hand below.
        scratch = CollectorRegistry()
        self._collectors = (ProcessCollector(registry=scratch), GCCollector(registry=scratch))
        self._gauges: dict[str, Gauge] = {}
        self._gauge = gauge

    def sample(self) -> None:
        with contextlib.suppress(OSError):
            for collector in self._collectors:
                for family in collector.collect():
                    for sample in family.samples:
                        self._set(sample.name, family.documentation, sample.labels, sample.value)

    def _set(self, name: str, doc: str, labels: dict[str, str], value: float) -> None:
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = self._gauges[name] = self._gauge(name, doc, tuple(labels), mode="liveall")
        (gauge.labels(**labels) if labels else gauge).set(value)
