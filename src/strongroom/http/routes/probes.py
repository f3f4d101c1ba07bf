"""Probes: liveness (no dependencies), readiness (every dependency, answered in JSON), health
(readiness with each component's details: queue depths, counters, versions)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from blacksheep import Request, Response

from strongroom.http.responses import json_response
from strongroom.http.routing import Endpoint, RouteTable

Check = Callable[[], Awaitable[object]]
Details = Callable[[], dict[str, object]]


@dataclass
class Readiness:
    """Named dependency checks plus the draining flag set on shutdown."""

    checks: dict[str, Check] = field(default_factory=dict)
    timeout: float = 1.0
    draining: bool = False
    # Extra facts per component for /healthz (cheap, synchronous: counters, sizes).
    details: dict[str, Details] = field(default_factory=dict)
    about: dict[str, object] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    async def run(self) -> tuple[bool, dict[str, dict[str, object]]]:
        results = await asyncio.gather(*(self._one(check) for check in self.checks.values()))
        components = dict(zip(self.checks, results, strict=True))
        ready = not self.draining and all(c["status"] == "ok" for c in components.values())
        return ready, components

    async def _one(self, check: Check) -> dict[str, object]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                outcome = await check()
        except TimeoutError:
            return {
                "status": "failing",
                "error": "timed out",
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        except Exception as exc:  # a probe reports any failure; it never raises
            return {
                "status": "failing",
                "error": type(exc).__name__,
                "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            }
        status = "failing" if outcome is False else "ok"
        return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def install(table: RouteTable, readiness: Readiness) -> None:
    async def livez(request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(request: Request) -> Response:
        ready, components = await readiness.run()
        failing = sorted(name for name, c in components.items() if c["status"] != "ok")
        if readiness.draining:
            failing.append("draining")
        body = {
            "status": "ready" if ready else "not_ready",
            "failing": failing,
            "components": components,
        }
        return json_response(body, 200 if ready else 503)

    async def healthz(request: Request) -> Response:
        ready, components = await readiness.run()
        for name, details in readiness.details.items():
            try:
                components.setdefault(name, {"status": "ok"}).update(details())
            except Exception as exc:  # details are informative; a failing one must not hide others
                components.setdefault(name, {})["details_error"] = type(exc).__name__
        failing = sorted(name for name, c in components.items() if c.get("status") == "failing")
        body = {
            "status": "draining" if readiness.draining else ("ok" if ready else "failing"),
            "failing": failing,
            "components": components,
            "uptime_seconds": round(time.monotonic() - readiness.started, 3),
            "pid": os.getpid(),
            **readiness.about,
        }
        return json_response(body, 200 if ready else 503)

    table.add(
        Endpoint(
            "GET",
            "/livez",
            livez,
            "Liveness: the process and its loop answer",
            "probes",
            responses={200: "Alive"},
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/readyz",
            readyz,
            "Readiness: database, key store, Redis and audit writer answer",
            "probes",
            responses={200: "Ready", 503: "Not ready; body names what fails"},
        )
    )
    table.add(
        Endpoint(
            "GET",
            "/healthz",
            healthz,
            "Health: readiness with every component's latency and details",
            "probes",
            responses={200: "Healthy", 503: "Not ready; body names what fails, with details"},
        )
    )
