"""Master key (KEK) rotation without downtime.

Rotating makes a new master key version active: new data keys are wrapped by it at once. A
background job, run by every replica, then re-wraps the existing data keys (the data itself is
never re-encrypted); old versions keep decrypting until ``strongroom keys retire`` marks them
retired, which it refuses while anything is still wrapped by them.

With local keys (environment or mounted file) the operator adds the new version to the key spec
(``1:<b64>,2:<b64>``) and restarts or lets the file be re-read; ``rotate`` then starts the
re-wrap. A wrapper that can create versions itself (Vault Transit) is asked to rotate.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from strongroom.crypto import KeyWrapper, WrappedKey
from strongroom.domain.errors import Conflict
from strongroom.resilience.background import BackgroundTask
from strongroom.store.rotation import Rotation, RotationStore

log = logging.getLogger("strongroom.keys")


class _Rotatable(Protocol):
    async def rotate(self) -> int: ...


@dataclass(frozen=True, slots=True)
class KeyStatus:
    active_version: int
    configured_versions: tuple[int, ...]
    retired_versions: tuple[int, ...]
    keys_by_version: dict[int, int]
    rotation: Rotation | None

    def as_dict(self) -> dict[str, Any]:
        pending = sum(n for v, n in self.keys_by_version.items() if v != self.active_version)
        rotation = self.rotation
        return {
            "active_version": self.active_version,
            "configured_versions": list(self.configured_versions),
            "retired_versions": list(self.retired_versions),
            "keys_by_version": {str(v): n for v, n in self.keys_by_version.items()},
            "keys_to_rewrap": pending,
            "rotation": None
            if rotation is None
            else {
                "id": rotation.id,
                "target_version": rotation.target_version,
                "requested_by": rotation.requested_by,
                "started_at": rotation.started_at.isoformat(),
                "finished_at": None
                if rotation.finished_at is None
                else rotation.finished_at.isoformat(),
                "rewrapped": rotation.rewrapped,
                "running": rotation.finished_at is None,
            },
        }


class KeyRotation:
    """Start, follow and finish master key rotations."""

    def __init__(self, store: RotationStore, wrapper: KeyWrapper) -> None:
        self._store = store
        self._wrapper = wrapper

    async def status(self) -> KeyStatus:
        return KeyStatus(
            active_version=self._wrapper.active_version,
            configured_versions=tuple(sorted(self._wrapper.versions())),
            retired_versions=tuple(sorted(await self._store.retired())),
            keys_by_version=await self._store.counts_by_version(),
            rotation=await self._store.latest(),
        )

    async def rotate(self, requested_by: str) -> Rotation:
        """Make a new version active (when the wrapper can) and start re-wrapping to it."""
        if await self._store.running() is not None:
            raise Conflict("a master key rotation is already running; see strongroom keys status")
        if hasattr(self._wrapper, "rotate"):
            rotatable: _Rotatable = self._wrapper  # type: ignore[assignment]
            await rotatable.rotate()
        target = self._wrapper.active_version
        counts = await self._store.counts_by_version()
        if not any(version != target for version in counts):
            raise Conflict(
                f"every key is already wrapped by master key version {target}; configure a new "
                "version first (STRONGROOM_MASTER_KEY=1:<old>,2:<new>) and restart"
            )
        return await self._store.start(target, requested_by)

    async def retire(self, version: int, retired_by: str) -> None:
        if version == self._wrapper.active_version:
            raise Conflict(f"master key version {version} is the active one")
        await self._store.retire(version, retired_by)

    async def rewrap(self, wrapped: WrappedKey, aad: bytes) -> WrappedKey:
        return await self._wrapper.rewrap(wrapped, aad)

    async def step(self, batch: int = 500) -> int:
        """Re-wrap one batch of the running rotation; finishes it when nothing is left."""
        rotation = await self._store.running()
        if rotation is None:
            return 0
        if rotation.target_version != self._wrapper.active_version:
            # This replica has not picked up the new version yet; leave the work to others.
            return 0
        done = await self._store.rewrap_batch(rotation, self.rewrap, batch)
        if done == 0:
            counts = await self._store.counts_by_version()
            if all(
                version == rotation.target_version for version in counts
            ) and await self._store.finish(rotation.id):
                log.info(
                    "master key rotation %d finished: every key is wrapped by version %d",
                    rotation.id,
                    rotation.target_version,
                )
        return done


class RewrapJob:
    """Runs :meth:`KeyRotation.step` in the background of every replica."""

    def __init__(self, rotation: KeyRotation, idle_interval: float = 2.0) -> None:
        self._rotation = rotation
        self._idle = idle_interval
        self._background = BackgroundTask("strongroom-kek-rewrap")
        self.rewrapped = 0

    async def start(self) -> None:
        self._background.start(self._run())

    async def stop(self) -> None:
        await self._background.stop()

    async def _run(self) -> None:
        while True:
            try:
                done = await self._rotation.step()
            except Exception as exc:  # a failed batch rolls back; the next one retries it
                log.warning("key re-wrap batch failed: %s", type(exc).__name__)
                done = 0
            self.rewrapped += done
            await asyncio.sleep(0 if done else self._idle)
