"""The ``strongroom`` command: serve, migrate, tenants, api-keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType

from strongroom import __version__
from strongroom.settings import Settings, SettingsError, export_metrics_dir, export_to_environment


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"strongroom: configuration error: {exc}", file=sys.stderr)
        return 2
    from strongroom.observability.logging import configure_logging

    # Commands print results on stdout (so scripts can capture a key); logs go to stderr.
    configure_logging(
        settings.log_level,
        settings.log_format,
        sys.stdout if args.command == "serve" else sys.stderr,
    )
    try:
        result: int = args.handler(settings, args)
    except _CommandError as exc:
        print(f"strongroom: {exc}", file=sys.stderr)
        return 1
    return result


class _CommandError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strongroom", description="Strongroom vault")
    parser.add_argument("--version", action="version", version=f"strongroom {__version__}")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the API under Granian")
    serve.add_argument("--host", help="bind address (default STRONGROOM_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default STRONGROOM_PORT or 8080)")
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.set_defaults(handler=_serve)

    migrate = commands.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(handler=_migrate)

    tenants = commands.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="action", required=True
    )
    create = tenants.add_parser("create", help="create a tenant")
    create.add_argument("name")
    create.set_defaults(handler=_tenants_create)
    tenants.add_parser("list", help="list tenants").set_defaults(handler=_tenants_list)

    keys = commands.add_parser("api-keys", help="manage API keys").add_subparsers(
        dest="action", required=True
    )
    key_create = keys.add_parser("create", help="create a key; prints only the key")
    key_create.add_argument("--tenant", required=True)
    key_create.add_argument(
        "--scope", action="append", required=True, dest="scopes", help="repeat for several scopes"
    )
    key_create.add_argument("--name", default="", help="a label to recognise the key by")
    key_create.set_defaults(handler=_keys_create)
    key_list = keys.add_parser("list", help="list keys (never their secrets)")
    key_list.add_argument("--tenant")
    key_list.set_defaults(handler=_keys_list)
    key_revoke = keys.add_parser("revoke", help="revoke a key by id")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(handler=_keys_revoke)

    keys = commands.add_parser("keys", help="master key rotation").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser(
        "status", help="active version, keys per version, rotation progress"
    ).set_defaults(handler=_keys_status)
    keys.add_parser(
        "rotate", help="start re-wrapping every data key to the active version"
    ).set_defaults(handler=_keys_rotate)
    keys.add_parser(
        "rewrap", help="re-wrap in the foreground until the rotation finishes"
    ).set_defaults(handler=_keys_rewrap)
    retire = keys.add_parser("retire", help="retire a master key version (refused while used)")
    retire.add_argument("version", type=int)
    retire.set_defaults(handler=_keys_retire)

    audit = commands.add_parser("audit", help="audit trail integrity").add_subparsers(
        dest="action", required=True
    )
    verify = audit.add_parser(
        "verify", help="recompute the hash chain; exit status 1 at the first broken link"
    )
    verify.add_argument(
        "--checkpoints",
        metavar="FILE",
        help="also check a checkpoint export kept outside the database",
    )
    verify.set_defaults(handler=_audit_verify)
    checkpoints = audit.add_parser("checkpoints", help="signed chain checkpoints")
    checkpoint_actions = checkpoints.add_subparsers(dest="checkpoints_action", required=True)
    export = checkpoint_actions.add_parser(
        "export", help="write every checkpoint as JSON lines, to keep elsewhere"
    )
    export.add_argument("--output", "-o", metavar="FILE", help="default: standard output")
    export.set_defaults(handler=_audit_checkpoints_export)
    audit.add_parser(
        "public-key", help="print the public key that signs checkpoints (PEM)"
    ).set_defaults(handler=_audit_public_key)

    verify_bundle = commands.add_parser(
        "verify-bundle",
        help="check a saved subject export bundle: section hashes and signature",
    )
    verify_bundle.add_argument("file", metavar="FILE")
    verify_bundle.add_argument(
        "--public-key",
        metavar="PEM_FILE",
        help="the service public key (`strongroom audit public-key`); "
        "default: derived from the configured master key",
    )
    verify_bundle.set_defaults(handler=_verify_bundle)

    records = commands.add_parser("records", help="record maintenance").add_subparsers(
        dest="action", required=True
    )
    retention = records.add_parser(
        "retention",
        help="delete records past their collection's retention_days (audited; legal holds kept)",
    )
    retention.add_argument("--dry-run", action="store_true", help="only count them")
    retention.set_defaults(handler=_records_retention)
    return parser


# -- database access for commands --------------------------------------------------------------


class _Databases(AbstractContextManager["_Databases"]):
    """The configured databases, or the embedded ones (started or joined) in development."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedded = None
        if settings.embedded:
            from strongroom import embedded

            self._embedded = embedded.start(settings.home)
            self.settings = settings.with_overrides(
                database_url=self._embedded.database_url,
                keystore_url=self._embedded.keystore_url,
                redis_url=settings.redis_url or self._embedded.redis_url,
            )

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None


def _run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]


async def _migrate_and(settings: Settings, action: object) -> object:
    import asyncpg

    from strongroom.store.migrate import migrate_all
    from strongroom.store.tenants import TenantRepository

    assert settings.database_url is not None
    await migrate_all(settings.database_url, settings.keystore_dsn or settings.database_url)
    if action is None:
        return None
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        return await action(TenantRepository(pool))  # type: ignore[operator]
    finally:
        await pool.close()


def _with_tenants(settings: Settings, action: object) -> object:
    from strongroom.domain.errors import DomainError

    with _Databases(settings) as databases:
        try:
            return _run(_migrate_and(databases.settings, action))
        except DomainError as exc:
            raise _CommandError(exc.detail) from None
        except OSError as exc:
            raise _CommandError(f"cannot reach the database: {exc}") from None


# -- commands ------------------------------------------------------------------------------------


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    _with_tenants(settings, None)
    print("migrations applied", file=sys.stderr)
    return 0


def _tenants_create(settings: Settings, args: argparse.Namespace) -> int:
    async def action(tenants: object) -> None:
        tenant = await tenants.create(args.name, settings.default_purposes)  # type: ignore[attr-defined]
        print(tenant.id)

    _with_tenants(settings, action)
    return 0


def _tenants_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(tenants: object) -> None:
        for tenant in await tenants.all():  # type: ignore[attr-defined]
            print(f"{tenant.name}\t{tenant.id}\t{','.join(tenant.purposes)}")

    _with_tenants(settings, action)
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.domain.access import generate_api_key, validate_scopes

    try:
        scopes = validate_scopes(args.scopes)
    except ValueError as exc:
        raise _CommandError(str(exc)) from None
    key = generate_api_key()

    async def action(tenants: object) -> None:
        await tenants.add_api_key(  # type: ignore[attr-defined]
            args.tenant, key.key_id, key.secret_hash, scopes, args.name
        )

    _with_tenants(settings, action)
    print(key.token)
    return 0


def _keys_list(settings: Settings, args: argparse.Namespace) -> int:
    async def action(tenants: object) -> None:
        for info in await tenants.list_api_keys(args.tenant):  # type: ignore[attr-defined]
            state = f"revoked {info.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if info.revoked_at else "active"
            print(f"{info.id}\t{info.tenant}\t{','.join(info.scopes)}\t{state}\t{info.name}")

    _with_tenants(settings, action)
    return 0


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def action(tenants: object) -> bool:
        return bool(await tenants.revoke_api_key(args.key_id))  # type: ignore[attr-defined]

    if not _with_tenants(settings, action):
        raise _CommandError(f"no active API key with id {args.key_id!r}")
    print(f"revoked {args.key_id}", file=sys.stderr)
    return 0


def _with_connection(settings: Settings, action: object) -> object:
    """Run ``action(connection)`` on the data database (no migration: a read-only check)."""
    import asyncpg

    with _Databases(settings) as databases:
        dsn = databases.settings.database_url
        assert dsn is not None

        async def run() -> object:
            connection = await asyncpg.connect(dsn)
            try:
                return await action(connection)  # type: ignore[operator]
            finally:
                await connection.close()

        try:
            return _run(run())
        except asyncpg.UndefinedTableError:
            raise _CommandError("the database is not migrated; run `strongroom migrate`") from None
        except OSError as exc:
            raise _CommandError(f"cannot reach the database: {exc}") from None


def _key_material(settings: Settings) -> tuple[object, dict[str, bytes]]:
    """The checkpoint signer and the trusted public keys of the configured key provider
    (local keys, a Vault KV secret, or Vault Transit)."""
    from strongroom.crypto import CryptoError
    from strongroom.crypto.providers import open_key_provider

    async def load() -> tuple[object, dict[str, bytes]]:
        provider = await open_key_provider(settings)
        try:
            return provider.signer, dict(provider.trusted_keys)
        finally:
            await provider.close()

    try:
        return _run(load())  # type: ignore[return-value]
    except CryptoError as exc:
        raise _CommandError(f"cannot load the keys: {exc}") from None


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.checkpoints import ExportFormatError, parse_checkpoint_export
    from strongroom.audit.verify import VerifyReport, verify_chain

    exported = []
    if args.checkpoints:
        try:
            with open(args.checkpoints, "rb") as handle:
                exported = parse_checkpoint_export(handle)
        except (OSError, ExportFormatError) as exc:
            raise _CommandError(f"cannot read {args.checkpoints}: {exc}") from None
    # Trusted: the keys of every configured master key version, and those published in an
    # export kept elsewhere (whoever rewrote the database could not change that file).
    keys = {cp.key_id: cp.public_key for cp in exported if cp.public_key is not None}
    keys.update(_key_material(settings)[1])

    async def action(connection: object) -> VerifyReport:
        return await verify_chain(connection, keys, exported=exported)  # type: ignore[arg-type]

    report = _with_connection(settings, action)
    assert isinstance(report, VerifyReport)
    print(report.to_json())
    if not report.ok and report.first_problem is not None:
        problem = report.first_problem
        print(
            f"strongroom: audit chain broken at position {problem.position}: "
            f"{problem.kind}: {problem.detail}",
            file=sys.stderr,
        )
    return 0 if report.ok else 1


def _audit_checkpoints_export(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.checkpoints import write_checkpoint_export

    if args.output is None:
        count = _with_connection(
            settings, lambda connection: write_checkpoint_export(connection, sys.stdout.buffer)
        )
    else:
        try:
            with open(args.output, "wb") as out:
                count = _with_connection(
                    settings, lambda connection: write_checkpoint_export(connection, out)
                )
        except OSError as exc:
            raise _CommandError(f"cannot write {args.output}: {exc.strerror}") from None
    print(f"exported {count} checkpoints", file=sys.stderr)
    return 0


def _audit_retention(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.retention import apply_retention, parse_policies

    signer, trusted = _key_material(settings)
    policies = parse_policies(settings.audit_retention)

    async def action(connection: object) -> object:
        return await apply_retention(
            connection,  # type: ignore[arg-type]
            policies,
            signer,  # type: ignore[arg-type]
            trusted,
            dry_run=args.dry_run,
        )

    result = _with_connection(settings, action)
    print(json.dumps(result.as_dict()))  # type: ignore[attr-defined]
    return 0


def _with_rotation(settings: Settings, action: object) -> object:
    """Run ``action(KeyRotation)`` against the key store (migrated first)."""
    import asyncpg

    from strongroom.crypto.providers import build_key_wrapper
    from strongroom.domain.errors import DomainError
    from strongroom.domain.rotation import KeyRotation
    from strongroom.store.migrate import migrate_all
    from strongroom.store.rotation import RotationStore

    with _Databases(settings) as databases:
        effective = databases.settings
        assert effective.database_url is not None
        dsn = effective.keystore_dsn or effective.database_url

        async def run() -> object:
            await migrate_all(effective.database_url or dsn, dsn)
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
            try:
                wrapper = await build_key_wrapper(effective)
                return await action(KeyRotation(RotationStore(pool), wrapper))  # type: ignore[operator]
            finally:
                await pool.close()

        try:
            return _run(run())
        except DomainError as exc:
            raise _CommandError(exc.detail) from None


def _keys_status(settings: Settings, args: argparse.Namespace) -> int:
    async def action(rotation: object) -> object:
        return (await rotation.status()).as_dict()  # type: ignore[attr-defined]

    print(json.dumps(_with_rotation(settings, action), indent=2))
    return 0


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def action(rotation: object) -> object:
        started = await rotation.rotate("cli")  # type: ignore[attr-defined]
        return started.target_version

    version = _with_rotation(settings, action)
    print(
        f"rotation to master key version {version} started; the service re-wraps in the "
        "background (or run: strongroom keys rewrap)",
        file=sys.stderr,
    )
    return 0


def _keys_rewrap(settings: Settings, args: argparse.Namespace) -> int:
    async def action(rotation: object) -> object:
        total = 0
        while True:
            done = await rotation.step()  # type: ignore[attr-defined]
            total += done
            if not done:
                status = (await rotation.status()).as_dict()  # type: ignore[attr-defined]
                if status["rotation"] is None or not status["rotation"]["running"]:
                    return total
                await asyncio.sleep(0.5)

    total = _with_rotation(settings, action)
    print(f"re-wrapped {total} keys; rotation finished", file=sys.stderr)
    return 0


def _keys_retire(settings: Settings, args: argparse.Namespace) -> int:
    async def action(rotation: object) -> object:
        await rotation.retire(args.version, "cli")  # type: ignore[attr-defined]
        return None

    _with_rotation(settings, action)
    print(
        f"master key version {args.version} retired; remove it from the configuration",
        file=sys.stderr,
    )
    return 0


def _audit_public_key(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.signing import public_key_pem

    signer, _ = _key_material(settings)
    print(f"# key id {signer.key_id}", file=sys.stderr)  # type: ignore[attr-defined]
    print(public_key_pem(signer.public_key), end="")  # type: ignore[attr-defined]
    return 0


def _records_retention(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.store.record_retention import apply_record_retention, count_expired

    async def action(connection: object) -> int:
        if args.dry_run:
            return await count_expired(connection)  # type: ignore[arg-type]
        return await apply_record_retention(connection)  # type: ignore[arg-type]

    count = _with_connection(settings, action)
    print(json.dumps({"expired" if args.dry_run else "deleted": count}))
    return 0


def _verify_bundle(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 "valid", or 1 naming every problem (see strongroom.bundle for an openssl recipe)."""
    from strongroom.audit.signing import key_id_of, load_public_key_pem
    from strongroom.bundle import verify_bundle
    from strongroom.crypto.providers import DEV_KEY_FILE

    if args.public_key:
        try:
            with open(args.public_key, encoding="ascii") as handle:
                public = load_public_key_pem(handle.read())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise _CommandError(f"cannot read the public key {args.public_key}: {exc}") from None
        keys = {key_id_of(public): public}
    else:
        configured = (
            settings.master_key or settings.master_passphrase or (settings.key_provider != "local")
        )
        if not configured and not (settings.home / DEV_KEY_FILE).exists():
            raise _CommandError("no master key is configured; pass --public-key PEM_FILE")
        keys = _key_material(settings)[1]
    try:
        with open(args.file, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise _CommandError(f"cannot read {args.file}: {exc.strerror}") from None
    problems = verify_bundle(raw, keys)
    if problems:
        for problem in problems:
            print(f"strongroom: invalid bundle: {problem}", file=sys.stderr)
        return 1
    print("valid")
    return 0


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    host = args.host or settings.host
    port = args.port or settings.port
    workers = args.workers or settings.workers
    databases = _Databases(settings)
    try:
        effective = databases.settings
        if settings.embedded:
            from strongroom.crypto.providers import ensure_dev_key

            if not (settings.master_key or settings.master_passphrase):
                ensure_dev_key(settings.home)
            export_to_environment(
                {
                    "DATABASE_URL": effective.database_url or "",
                    "KEYSTORE_URL": effective.keystore_url or "",
                    "REDIS_URL": effective.redis_url or "",
                    "HOME": str(settings.home.resolve()),
                }
            )
        _run(_migrate_and(effective, _bootstrap_default_tenant if settings.embedded else None))
        metrics_dir = None
        if settings.metrics and workers > 1:
            from strongroom.observability.metrics import prepare_multiprocess_dir

            # Granian's workers write their metric values there and any of them answers a
            # scrape for all; emptied first, so a previous run's totals do not add up with ours.
            # One worker keeps its values in memory (cheaper; a respawn is a counter reset).
            metrics_dir = prepare_multiprocess_dir(settings.metrics_dir)
            export_metrics_dir(metrics_dir)
        command = [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "strongroom.app:create_app_from_env",
        ]
        if not settings.embedded:
            # Nothing to clean up after Granian: let it take over this process (PID 1 in a pod).
            os.execv(sys.executable, command)  # noqa: S606 - fixed argv
        try:
            return _supervise(command)
        finally:
            if metrics_dir is not None and settings.metrics_dir is None:
                shutil.rmtree(metrics_dir, ignore_errors=True)  # the fresh one made above
    finally:
        databases.stop()


def _supervise(command: list[str]) -> int:
    """Run Granian as a child, pass SIGTERM/SIGINT on, and return its exit status."""
    child = subprocess.Popen(command)  # noqa: S603 - fixed argv
    forwarded = {signal.SIGTERM, signal.SIGINT}

    def forward(signum: int, _frame: object) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in forwarded}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _bootstrap_default_tenant(tenants: object) -> None:
    """Zero-config mode: tenant ``default`` and an admin key, printed once."""
    from strongroom.domain.access import generate_api_key

    if await tenants.get_by_name("default") is not None:  # type: ignore[attr-defined]
        return
    await tenants.create("default", Settings().default_purposes)  # type: ignore[attr-defined]
    key = generate_api_key()
    await tenants.add_api_key(  # type: ignore[attr-defined]
        "default", key.key_id, key.secret_hash, frozenset({"admin"}), "bootstrap admin"
    )
    banner = (
        "\n"
        "  Strongroom is starting with embedded PostgreSQL and Redis (development mode).\n"
        "  Admin API key for tenant 'default' (shown once, keep it):\n\n"
        f"    {key.token}\n\n"
        "  Try:  curl -H 'Authorization: Bearer <key>' http://127.0.0.1:8080/readyz\n"
    )
    print(banner, file=sys.stderr, flush=True)
