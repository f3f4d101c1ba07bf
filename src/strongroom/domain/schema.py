"""Collection schemas: field definitions, and validation of record data against them."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from strongroom.domain.errors import Conflict, FieldError, ValidationFailed

FIELD_TYPES = (
    "email",
    "card",
    "ssn",
    "phone",
    "iban",
    "name",
    "text",
    "date",
    "number",
    "boolean",
)
# Types that are personal data by nature: sensitive unless the schema says otherwise.
PII_TYPES = frozenset({"email", "card", "ssn", "phone", "iban", "name"})
# Types that may never be stored in plaintext (PCI DSS for cards; SSNs are too dangerous).
ALWAYS_SENSITIVE = frozenset({"card", "ssn"})
MASK_POLICIES = ("partial", "full", "hash", "redact")

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,62}")
MAX_FIELDS = 64
MAX_TEXT = 10_000
MAX_NAME = 200
# JSON numbers are doubles to most clients: refuse integers they would silently round.
MAX_SAFE_INTEGER = 2**53 - 1
MAX_RETENTION_DAYS = 36_500

_FIELD_KEYS = frozenset({"type", "sensitive", "searchable", "mask", "required"})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a collection."""

    name: str
    type: str
    sensitive: bool
    searchable: bool
    mask: str
    required: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "sensitive": self.sensitive,
            "searchable": self.searchable,
            "mask": self.mask,
            "required": self.required,
        }


@dataclass(frozen=True, slots=True)
class CollectionSchema:
    """The fields of a collection, by name."""

    name: str
    fields: Mapping[str, FieldSpec]
    # Records are deleted this many days after their last update (None: kept until deleted).
    retention_days: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: spec.to_json() for name, spec in self.fields.items()}

    @classmethod
    def from_stored(
        cls, name: str, stored: Mapping[str, Any], retention_days: int | None = None
    ) -> CollectionSchema:
        fields = {key: FieldSpec(name=key, **value) for key, value in stored.items()}
        return cls(name, fields, retention_days)

    def sensitive_fields(self) -> list[str]:
        return [name for name, spec in self.fields.items() if spec.sensitive]


def valid_name(value: object) -> bool:
    return isinstance(value, str) and NAME_PATTERN.fullmatch(value) is not None


def parse_collection(name: str, body: object) -> CollectionSchema:
    """Validate a ``PUT /v1/collections/{name}`` body: ``{"fields": {name: {type, ...}}}``."""
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise ValidationFailed(
            "the body must be a JSON object", [FieldError("", "expected object")]
        )
    unknown = sorted(set(body) - {"fields", "retention_days"})
    errors.extend(FieldError(f"/{key}", "unknown member") for key in unknown)
    retention = body.get("retention_days")
    if retention is not None and (
        isinstance(retention, bool)
        or not isinstance(retention, int)
        or not 1 <= retention <= MAX_RETENTION_DAYS
    ):
        errors.append(FieldError("/retention_days", f"an integer from 1 to {MAX_RETENTION_DAYS}"))
    raw_fields = body.get("fields")
    if not isinstance(raw_fields, dict) or not raw_fields:
        errors.append(FieldError("/fields", "expected a non-empty object of field definitions"))
        raise ValidationFailed("invalid collection schema", errors)
    if len(raw_fields) > MAX_FIELDS:
        errors.append(FieldError("/fields", f"at most {MAX_FIELDS} fields"))
    fields: dict[str, FieldSpec] = {}
    for field_name, definition in raw_fields.items():
        where = f"/fields/{field_name}"
        if not valid_name(field_name):
            errors.append(FieldError(where, "field names are 1-63 of a-z, 0-9, _ (letter first)"))
            continue
        spec = _parse_field(field_name, definition, where, errors)
        if spec is not None:
            fields[field_name] = spec
    if errors:
        raise ValidationFailed("invalid collection schema", errors)
    return CollectionSchema(name, fields, retention)


def _parse_field(
    name: str, definition: object, where: str, errors: list[FieldError]
) -> FieldSpec | None:
    if not isinstance(definition, dict):
        errors.append(FieldError(where, "expected an object with at least a type"))
        return None
    before = len(errors)
    errors.extend(
        FieldError(f"{where}/{key}", "unknown member")
        for key in sorted(set(definition) - _FIELD_KEYS)
    )
    kind = definition.get("type")
    if kind not in FIELD_TYPES:
        errors.append(FieldError(f"{where}/type", f"must be one of {', '.join(FIELD_TYPES)}"))
        return None
    sensitive = definition.get("sensitive", kind in PII_TYPES)
    searchable = definition.get("searchable", False)
    required = definition.get("required", False)
    mask = definition.get("mask", "partial")
    for key, value in (
        ("sensitive", sensitive),
        ("searchable", searchable),
        ("required", required),
    ):
        if not isinstance(value, bool):
            errors.append(FieldError(f"{where}/{key}", "must be true or false"))
    if mask not in MASK_POLICIES:
        errors.append(FieldError(f"{where}/mask", f"must be one of {', '.join(MASK_POLICIES)}"))
    if kind in ALWAYS_SENSITIVE and sensitive is False:
        errors.append(FieldError(f"{where}/sensitive", f"{kind} fields are always sensitive"))
    if len(errors) > before:
        return None
    return FieldSpec(name, kind, sensitive, searchable, mask, required)


def check_schema_change(
    current: CollectionSchema, new: CollectionSchema, has_records: bool
) -> None:
    """Refuse changes that would strand stored data; mask policy and new fields are free."""
    if not has_records:
        return
    problems: list[FieldError] = []
    for name, old in current.fields.items():
        replacement = new.fields.get(name)
        if replacement is None:
            problems.append(FieldError(f"/fields/{name}", "cannot remove a field that has records"))
            continue
        for attribute in ("type", "sensitive", "searchable"):
            if getattr(old, attribute) != getattr(replacement, attribute):
                problems.append(
                    FieldError(
                        f"/fields/{name}/{attribute}",
                        f"cannot change {attribute} of a field while the collection has records",
                    )
                )
    for name, spec in new.fields.items():
        if name not in current.fields and spec.required:
            problems.append(
                FieldError(
                    f"/fields/{name}/required",
                    "a new field cannot be required while the collection has records",
                )
            )
    if problems:
        raise Conflict("the schema change conflicts with stored records", problems)


def validate_data(
    schema: CollectionSchema, data: object, *, partial: bool, where: str = "/data"
) -> dict[str, Any]:
    """Check record data against the schema and return it normalised.

    ``partial`` (PATCH): fields may be absent and ``null`` removes an optional field.
    """
    if not isinstance(data, dict):
        raise ValidationFailed("data must be a JSON object", [FieldError(where, "expected object")])
    errors: list[FieldError] = []
    clean: dict[str, Any] = {}
    for key, value in data.items():
        spec = schema.fields.get(key)
        location = f"{where}/{key}"
        if spec is None:
            errors.append(FieldError(location, "unknown field for this collection"))
            continue
        if value is None:
            if not partial or spec.required:
                errors.append(FieldError(location, "must not be null"))
            else:
                clean[key] = None
            continue
        try:
            clean[key] = normalise_value(spec.type, value)
        except ValueError as exc:
            errors.append(FieldError(location, str(exc)))
    if not partial:
        for name, spec in schema.fields.items():
            if spec.required and name not in data:
                errors.append(FieldError(f"{where}/{name}", "required"))
    if errors:
        raise ValidationFailed("the record does not match the collection schema", errors)
    return clean


def normalise_value(kind: str, value: object) -> Any:
    """Validate one value of ``kind``; raise ValueError with a client-safe reason."""
    checker = _CHECKERS[kind]
    return checker(value)


def _string(value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    if len(value) > limit:
        raise ValueError(f"at most {limit} characters")
    if any(unicodedata.category(c) == "Cs" for c in value):
        raise ValueError("invalid Unicode (lone surrogate)")
    return value


def _no_controls(value: str) -> str:
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("control characters are not allowed")
    return value


_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")


def _email(value: object) -> str:
    text = _no_controls(_string(value, 254).strip())
    if not _EMAIL.fullmatch(text):
        raise ValueError("not an email address")
    return text


def _digits(value: str, allowed: str) -> str:
    if any(not (c.isdigit() and c.isascii()) and c not in allowed for c in value):
        raise ValueError("unexpected characters")
    return "".join(c for c in value if c.isdigit())


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _card(value: object) -> str:
    text = _string(value, 40).strip()
    digits = _digits(text, " -")
    if not 12 <= len(digits) <= 19 or not luhn_valid(digits):
        raise ValueError("not a valid card number (12-19 digits, Luhn checksum)")
    return digits


def _ssn(value: object) -> str:
    text = _string(value, 16).strip()
    digits = _digits(text, " -")
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if (
        len(digits) != 9
        or area in ("000", "666")
        or area.startswith("9")
        or group == "00"
        or serial == "0000"
    ):
        raise ValueError("not a valid US SSN")
    return f"{area}-{group}-{serial}"


def _phone(value: object) -> str:
    text = _string(value, 32).strip()
    body = text[1:] if text.startswith("+") else text
    digits = _digits(body, " -.()")
    if not 7 <= len(digits) <= 15:
        raise ValueError("not a phone number (7-15 digits)")
    return text


def iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    if not all(c.isascii() and c.isalnum() for c in compact):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _iban(value: object) -> str:
    compact = _string(value, 48).replace(" ", "").upper()
    if not iban_valid(compact):
        raise ValueError("not a valid IBAN (mod-97 checksum)")
    return compact


def _name(value: object) -> str:
    text = _no_controls(_string(value, MAX_NAME)).strip()
    if not text:
        raise ValueError("must not be empty")
    return unicodedata.normalize("NFC", text)


def _text(value: object) -> str:
    text = _string(value, MAX_TEXT)
    if "\x00" in text:
        raise ValueError("NUL characters are not allowed")
    return text


# fromisoformat alone also takes ISO week dates ("2024-W05-6"); only YYYY-MM-DD is a date here.
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _date(value: object) -> str:
    text = _string(value, 10)
    try:
        parsed = dt.date.fromisoformat(text) if _DATE.fullmatch(text) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("expected a date as YYYY-MM-DD")
    return parsed.isoformat()


def _number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected a number")
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        raise ValueError("integer out of range (at most 2^53 - 1 in magnitude)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("expected a finite number")
    return value


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


_CHECKERS = {
    "email": _email,
    "card": _card,
    "ssn": _ssn,
    "phone": _phone,
    "iban": _iban,
    "name": _name,
    "text": _text,
    "date": _date,
    "number": _number,
    "boolean": _boolean,
}
