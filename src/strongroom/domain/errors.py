"""Domain exceptions. The HTTP layer maps each to one problem type; nothing here knows HTTP."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one input location (a JSON pointer-like path)."""

    location: str
    message: str


class DomainError(Exception):
    """Base of the errors a client can cause; ``detail`` is safe to show to the client."""

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class NotFound(DomainError):
    """The resource does not exist for this tenant (another tenant's resource is also NotFound)."""


class ValidationFailed(DomainError):
    """The input is well-formed but breaks the schema; ``errors`` names each location."""


class BadRequest(DomainError):
    """The request itself is malformed (bad id, bad cursor, missing purpose)."""


class Conflict(DomainError):
    """The change conflicts with the current state (schema change with live records, duplicates)."""


class PreconditionFailed(DomainError):
    """``If-Match`` does not match the current version."""


class Unauthenticated(DomainError):
    """No valid API key."""


class Forbidden(DomainError):
    """The API key lacks the scope the operation needs."""


class ServiceUnavailable(DomainError):
    """A dependency (database, key provider, audit store) cannot serve now; retry later."""


class AuditUnavailable(ServiceUnavailable):
    """The audit store did not take the event in time: the operation fails closed."""


class IntegrityFailure(DomainError):
    """Stored ciphertext failed authentication: it was moved, tampered with or the key is wrong."""
