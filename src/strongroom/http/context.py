"""Request-scoped values shared with logging: the request id travels in a context variable."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("strongroom_request_id", default=None)

# Accept a caller's request id only when it is short and harmless in logs and headers.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id(offered: bytes | None) -> str:
    if offered:
        try:
            text = offered.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if _ACCEPTABLE.fullmatch(text):
            return text
    return os.urandom(16).hex()  # 128 random bits, as a UUID's hex without the version bits
