"""The ``strongroom`` command: serve, migrate, tenants, api-keys."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from types import TracebackType

from strongroom import __version__
from strongroom.settings import Settings, SettingsError, export_to_environment


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


def _audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.checkpoints import ExportFormatError, parse_checkpoint_export
    from strongroom.audit.signing import trusted_keys
    from strongroom.audit.verify import VerifyReport, verify_chain
    from strongroom.crypto.providers import load_master_keys

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
    keys.update(trusted_keys(load_master_keys(settings)))

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
    from strongroom.audit.signing import Ed25519Signer, trusted_keys
    from strongroom.crypto.providers import load_master_keys

    master_keys = load_master_keys(settings)
    signer = Ed25519Signer.from_master_keys(master_keys)
    policies = parse_policies(settings.audit_retention)

    async def action(connection: object) -> object:
        return await apply_retention(
            connection,  # type: ignore[arg-type]
            policies,
            signer,
            trusted_keys(master_keys),
            dry_run=args.dry_run,
        )

    result = _with_connection(settings, action)
    print(json.dumps(result.as_dict()))  # type: ignore[attr-defined]
    return 0


def _audit_public_key(settings: Settings, args: argparse.Namespace) -> int:
    from strongroom.audit.signing import Ed25519Signer
    from strongroom.crypto.providers import load_master_keys

    signer = Ed25519Signer.from_master_keys(load_master_keys(settings))
    print(f"# key id {signer.key_id}", file=sys.stderr)
    print(signer.public_key_pem(), end="")
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
        return _supervise(command)
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
