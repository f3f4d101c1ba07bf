"""Who is calling: API keys, scopes, principals and reveal purposes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from strongroom.domain.errors import BadRequest, Forbidden

SCOPES = (
    "records:read",
    "records:write",
    "records:reveal",
    "subjects:export",
    "subjects:erase",
    "audit:read",
    "admin",
)

KEY_PREFIX = "srk_"
# srk_<16 hex key id>_<43 base64url chars: 256 random bits>
KEY_PATTERN = re.compile(r"srk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
PURPOSE_HEADER = "X-Purpose"


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated API key: its tenant, scopes and the tenant's reveal purposes."""

    key_id: str
    tenant_id: str
    tenant_name: str
    scopes: frozenset[str]
    purposes: tuple[str, ...]

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden(f"this API key lacks the scope {scope!r}")

    def require_purpose(self, purpose: str | None) -> str:
        if purpose is None or purpose.strip() == "":
            raise BadRequest(
                f"revealing plaintext needs a stated purpose in the {PURPOSE_HEADER} header; "
                f"one of: {', '.join(self.purposes)}"
            )
        purpose = purpose.strip()
        if purpose not in self.purposes:
            raise BadRequest(
                f"unknown purpose; {PURPOSE_HEADER} must be one of: {', '.join(self.purposes)}"
            )
        return purpose


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key_id: str
    secret_hash: bytes
    token: str  # shown once, never stored


def generate_api_key() -> NewApiKey:
    """A new key: an id to look it up by and 256 random bits, of which only a hash is kept."""
    key_id = secrets.token_hex(8)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return NewApiKey(key_id, hash_secret(secret), f"{KEY_PREFIX}{key_id}_{secret}")


def hash_secret(secret: str) -> bytes:
    # The secret is 256 random bits, so a fast hash is safe; no stretching is needed.
    return hashlib.sha256(secret.encode()).digest()


def parse_api_key(token: str) -> tuple[str, str] | None:
    """Split a presented key into (key id, secret); None when it is not shaped like one."""
    match = KEY_PATTERN.fullmatch(token)
    if match is None:
        return None
    return match.group(1), match.group(2)


def secret_matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def validate_scopes(scopes: list[str]) -> frozenset[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(SCOPES)}"
        )
    return frozenset(scopes)
