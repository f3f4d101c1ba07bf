"""Canonical, unambiguous byte encodings used as AEAD associated data and KDF context.

Every part is written as a 4-byte big-endian length followed by its bytes, after a label that
names the purpose and its format version. Two different tuples of parts therefore never encode to
the same bytes, whatever characters (including separators) the parts contain, and encodings made
for one purpose can never collide with those made for another.
"""

from __future__ import annotations

import struct

_U32 = struct.Struct(">I")
U32_MAX = 0xFFFF_FFFF


def text_bytes(value: str) -> bytes:
    """UTF-8 bytes of `value`; lone surrogates are encoded rather than rejected, which keeps the
    mapping total and injective over every Python string."""
    return value.encode("utf-8", "surrogatepass")


def u32(value: int, what: str) -> bytes:
    """Four big-endian bytes of a key version in 1..2**32-1; `ValueError` outside that range."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= U32_MAX:
        raise ValueError(f"{what} must be an integer in 1..{U32_MAX}")
    return _U32.pack(value)


def encode_parts(label: bytes, *parts: bytes) -> bytes:
    """Length-prefix `label` and every part, and concatenate them."""
    out = bytearray()
    for part in (label, *parts):
        out += _U32.pack(len(part))
        out += part
    return bytes(out)
