"""Reading request bodies: JSON only, bounded in size, strict about encoding and duplicates."""

from __future__ import annotations

import json
from typing import Any

import orjson
from blacksheep import Request

from strongroom.http.errors import HttpProblem


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise HttpProblem(400, "malformed-json", f"duplicate member {key!r} in JSON object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise HttpProblem(400, "malformed-json", f"{name} is not valid JSON")


async def read_json(request: Request, limit: int) -> Any:
    """The parsed JSON body: 415 unless JSON, 413 over ``limit`` bytes, 400 when malformed.

    Duplicate object members are refused (parsers disagree on which one wins, which is how
    smuggling starts), as are NaN/Infinity and invalid UTF-8.
    """
    content_type = (request.get_first_header(b"content-type") or b"").split(b";")[0].strip()
    if content_type.lower() != b"application/json" and not (
        content_type.lower().startswith(b"application/") and content_type.endswith(b"+json")
    ):
        raise HttpProblem(415, "unsupported-media-type", "send the body as application/json")
    declared = request.get_first_header(b"content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise HttpProblem(400, "bad-request", "Content-Length is not a number") from None
        if length > limit:
            raise HttpProblem(413, "payload-too-large", f"the body exceeds {limit} bytes")
    chunks = bytearray()
    async for chunk in request.stream():  # type: ignore[attr-defined]  # stub is wrong: async gen
        chunks.extend(chunk)
        if len(chunks) > limit:
            raise HttpProblem(413, "payload-too-large", f"the body exceeds {limit} bytes")
    if not chunks:
        raise HttpProblem(400, "malformed-json", "the body is empty; send a JSON document")
    raw = bytes(chunks)
    try:
        # orjson validates strictly: UTF-8, lone surrogates, NaN/Infinity, depth.
        orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpProblem(400, "malformed-json", f"malformed JSON: {exc.msg}") from None
    try:
        # The stdlib then parses exactly (integers stay integers, however large, so range
        # checks can refuse them) and reports duplicate members.
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):
        raise HttpProblem(400, "malformed-json", "malformed JSON") from None
