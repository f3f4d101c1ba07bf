"""PII scanner in pure Python: the executable specification of ``native/scan.pyx``.

The scanner visits the code points left to right. At each position every matcher that can begin
there is tried; the candidate reaching furthest wins (ties: the order of ``_MATCHERS``, i.e.
CREDENTIAL, EMAIL, IBAN, CARD, SSN, PHONE, IPV6, IPV4), it is emitted and the scan resumes at its
end. So findings are sorted, never overlap, and "earliest start, then longest" decides conflicts.
Every matcher needs a left boundary (the code point before is not a word character), which is why
positions inside a word are skipped. ``native/README.md`` lists what each kind accepts and rejects.
"""

from __future__ import annotations

from collections.abc import Callable

Span = tuple[str, int, int]

_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_LOWER_HEX = frozenset("0123456789abcdef")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_UPPER_ALNUM = _UPPER | _DIGITS
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_B64TOKEN = _B64URL | frozenset(".~+/")  # RFC 6750 b64token, without the '=' padding
_LOCAL_PUNCT = frozenset("._%+-")
_NUM_JOIN = frozenset(".-")  # a digit run continued by these is one longer number
_PEM_LABEL = _UPPER_ALNUM | frozenset(" ")

_MAX_CARD_DIGITS = 19
_MAX_PHONE_DIGITS = 15
_MAX_IBAN = 34
_MIN_IBAN = 15
_MIN_BEARER = 8
_MAX_PEM_LABEL = 64


def _at(text: str, i: int) -> str:
    """The code point at ``i``, or ``""`` outside the text (no class contains ``""``)."""
    return text[i] if 0 <= i < len(text) else ""


def _is_word(c: str) -> bool:
    return c == "_" or c.isalnum()


def _is_local(c: str) -> bool:
    return c in _LOCAL_PUNCT or c.isalnum()


def _num_left_ok(text: str, i: int) -> bool:
    prev = _at(text, i - 1)
    return not _is_word(prev) and not (prev in _NUM_JOIN and _at(text, i - 2) in _DIGITS)


def _num_right_ok(text: str, j: int) -> bool:
    nxt = _at(text, j)
    return not _is_word(nxt) and not (nxt in _NUM_JOIN and _at(text, j + 1) in _DIGITS)


def _digit_run(text: str, i: int, seps: str, limit: int) -> tuple[int, str]:
    """Digits from ``i`` with single separators between them; stops once past ``limit`` digits."""
    j = i
    digits: list[str] = []
    n = len(text)
    while len(digits) <= limit:
        while j < n and text[j] in _DIGITS:
            digits.append(text[j])
            j += 1
        if j + 1 < n and text[j] in seps and text[j + 1] in _DIGITS:
            j += 1
            continue
        break
    return j, "".join(digits)


def luhn_ok(digits: str) -> bool:
    total = 0
    for pos, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if pos % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(chars: str) -> bool:
    rem = 0
    for ch in chars[4:] + chars[:4]:
        rem = (rem * 10 + ord(ch) - 48) % 97 if ch in _DIGITS else (rem * 100 + ord(ch) - 55) % 97
    return rem == 1


def _card(text: str, i: int) -> Span | None:
    if text[i] not in _DIGITS or not _num_left_ok(text, i):
        return None
    j, digits = _digit_run(text, i, " -", _MAX_CARD_DIGITS)
    if 13 <= len(digits) <= _MAX_CARD_DIGITS and _num_right_ok(text, j) and luhn_ok(digits):
        return ("CARD", i, j)
    return None


def _ssn(text: str, i: int) -> Span | None:
    if not _num_left_ok(text, i):
        return None
    sep = _at(text, i + 3)
    if sep not in (" ", "-") or _at(text, i + 6) != sep:
        return None
    area, group, serial = text[i : i + 3], text[i + 4 : i + 6], text[i + 7 : i + 11]
    if not all(c in _DIGITS for c in area + group + serial) or len(serial) != 4:
        return None
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return ("SSN", i, i + 11) if _num_right_ok(text, i + 11) else None


def _international_phone(text: str, i: int) -> Span | None:
    if text[i] != "+" or not _num_left_ok(text, i) or _at(text, i + 1) not in _DIGITS:
        return None
    if text[i + 1] == "0":
        return None
    j, digits = _digit_run(text, i + 1, " -.", _MAX_PHONE_DIGITS)
    if 8 <= len(digits) <= _MAX_PHONE_DIGITS and _num_right_ok(text, j):
        return ("PHONE", i, j)
    return None


def _nxx(text: str, i: int) -> bool:
    """Three digits, the first 2–9 (a valid NANP area code or exchange)."""
    return (
        _at(text, i) in _DIGITS
        and text[i] >= "2"
        and _at(text, i + 1) in _DIGITS
        and _at(text, i + 2) in _DIGITS
    )


def _nanp_phone(text: str, i: int) -> Span | None:
    if not _num_left_ok(text, i):
        return None
    j = i
    if text[j] == "+":
        if _at(text, j + 1) != "1":
            return None
        j += 2
        if _at(text, j) in (" ", "-", "."):
            j += 1
    elif text[j] == "1" and _at(text, j + 1) in (" ", "-", "."):
        j += 2
    if _at(text, j) == "(":
        if not _nxx(text, j + 1) or _at(text, j + 4) != ")":
            return None
        j += 5
        if _at(text, j) == " ":
            j += 1
        if not _nxx(text, j):
            return None
        sep = _at(text, j + 3)
        if sep not in ("-", ".", " "):
            return None
    else:
        if not _nxx(text, j):
            return None
        sep = _at(text, j + 3)
        if sep not in ("-", ".", " "):
            return None
        j += 4
        if not _nxx(text, j) or _at(text, j + 3) != sep:
            return None
    line = text[j + 4 : j + 8]
    if len(line) != 4 or not all(c in _DIGITS for c in line):
        return None
    end = j + 8
    return ("PHONE", i, end) if _num_right_ok(text, end) else None


def _ipv4_end(text: str, i: int) -> int:
    """End of a dotted quad starting at ``i`` (octets 0–255, 1–3 digits), or -1."""
    j = i
    for octet in range(4):
        if octet and (_at(text, j) != "." or _at(text, j + 1) not in _DIGITS):
            return -1
        if octet:
            j += 1
        start = j
        while _at(text, j) in _DIGITS and j - start <= 3:
            j += 1
        if j == start or j - start > 3 or int(text[start:j]) > 255:
            return -1
    return j


def _ipv4(text: str, i: int) -> Span | None:
    if text[i] not in _DIGITS or not _num_left_ok(text, i):
        return None
    end = _ipv4_end(text, i)
    return ("IPV4", i, end) if end > 0 and _num_right_ok(text, end) else None


def _ipv6(text: str, i: int) -> Span | None:
    prev = _at(text, i - 1)
    if _is_word(prev) or prev == ":":
        return None
    j = i
    groups = 0
    compressed = False
    if text.startswith("::", j):
        compressed = True
        j += 2
    while groups <= 8:
        start = j
        while _at(text, j) in _HEX and j - start <= 4:
            j += 1
        if j == start:
            break
        if j - start > 4:
            return None
        if _at(text, j) == "." and groups <= 6:
            quad = _ipv4_end(text, start)
            if quad > 0:
                groups += 2
                j = quad
                break
        groups += 1
        if text.startswith("::", j) and not compressed:
            compressed = True
            j += 2
        elif _at(text, j) == ":" and _at(text, j + 1) in _HEX:
            j += 1
        else:
            break
    if groups == 0 or (groups != 8 if not compressed else groups > 7):
        return None
    nxt = _at(text, j)
    if _is_word(nxt) or nxt == ":" or (nxt == "." and _at(text, j + 1) in _DIGITS):
        return None
    if not any(c in _DIGITS for c in text[i:j]):
        return None
    return ("IPV6", i, j)


def _iban(text: str, i: int) -> Span | None:
    if not (
        text[i] in _UPPER
        and _at(text, i + 1) in _UPPER
        and _at(text, i + 2) in _DIGITS
        and _at(text, i + 3) in _DIGITS
    ):
        return None
    if _is_word(_at(text, i - 1)):
        return None
    j = i
    while _at(text, j) in _UPPER_ALNUM and j - i <= _MAX_IBAN:
        j += 1
    if j - i > 4:
        ok = _MIN_IBAN <= j - i <= _MAX_IBAN and not _is_word(_at(text, j))
        return ("IBAN", i, j) if ok and iban_ok(text[i:j]) else None
    if _is_word(_at(text, j)):
        return None
    # Grouped form: "DE89 3704 0044 ...", groups of 4 split by one space, the last 1–4 long.
    chars = text[i:j]
    ends: list[tuple[int, str]] = []
    while _at(text, j) == " " and _at(text, j + 1) in _UPPER_ALNUM and len(chars) <= _MAX_IBAN:
        k = j + 1
        while _at(text, k) in _UPPER_ALNUM and k - j <= 5:
            k += 1
        size = k - j - 1
        if size > 4 or _is_word(_at(text, k)):
            break
        chars += text[j + 1 : k]
        ends.append((k, chars))
        j = k
        if size < 4:
            break
    for end, value in reversed(ends):
        if _MIN_IBAN <= len(value) <= _MAX_IBAN and iban_ok(value):
            return ("IBAN", i, end)
    return None


def _bearer(text: str, i: int) -> Span | None:
    word = text[i : i + 6]
    if not (word.isascii() and word.lower() == "bearer") or _is_word(_at(text, i - 1)):
        return None
    start = i + 6
    if _at(text, start) != " ":
        return None
    while _at(text, start) == " ":
        start += 1
    j = start
    while _at(text, j) in _B64TOKEN:
        j += 1
    while _at(text, j) == "=":
        j += 1
    token = text[start:j]
    if len(token) < _MIN_BEARER or not any(c in _DIGITS for c in token):
        return None
    return None if _is_word(_at(text, j)) else ("CREDENTIAL", start, j)


def _api_key(text: str, i: int) -> Span | None:
    if not text.startswith("srk_", i):
        return None
    prev = _at(text, i - 1)
    if _is_word(prev) or prev == "-":
        return None
    if not all(_at(text, i + 4 + k) in _LOWER_HEX for k in range(16)) or _at(text, i + 20) != "_":
        return None
    if not all(_at(text, i + 21 + k) in _B64URL for k in range(43)):
        return None
    end = i + 64
    nxt = _at(text, end)
    return None if nxt in _B64URL or _is_word(nxt) else ("CREDENTIAL", i, end)


def _jwt(text: str, i: int) -> Span | None:
    if not text.startswith("eyJ", i):
        return None
    prev = _at(text, i - 1)
    if _is_word(prev) or prev in ("-", "."):
        return None
    j = i
    segments = 0
    while True:
        start = j
        while _at(text, j) in _B64URL:
            j += 1
        if j == start:
            return None
        segments += 1
        if _at(text, j) == "." and _at(text, j + 1) in _B64URL:
            j += 1
            continue
        break
    if segments < 3 or _is_word(_at(text, j)):
        return None
    return ("CREDENTIAL", i, j)


def _pem(text: str, i: int) -> Span | None:
    if not text.startswith("-----BEGIN ", i) or _at(text, i - 1) == "-":
        return None
    j = i + 11
    while _at(text, j) in _PEM_LABEL and j - i - 11 < _MAX_PEM_LABEL:
        j += 1
    label = text[i + 11 : j]
    if not label.endswith("PRIVATE KEY") or not text.startswith("-----", j):
        return None
    footer = "-----END " + label + "-----"
    found = text.find(footer, j + 5)
    # A block cut short (no END line) is still a key: redact through the end of the text.
    return ("CREDENTIAL", i, len(text) if found < 0 else found + len(footer))


def _email(text: str, i: int) -> Span | None:
    if not _is_local(text[i]) or _is_local(_at(text, i - 1)):
        return None
    at = i
    while _is_local(_at(text, at)):
        at += 1
    if _at(text, at) != "@":
        return None
    start = i
    while start < at and not text[start].isalnum():
        start += 1
    if start == at:
        return None
    j = at + 1
    labels = 0
    label_start = j
    while True:
        label_start = j
        while _at(text, j) == "-" or _at(text, j).isalnum():
            j += 1
        if j == label_start or text[label_start] == "-" or text[j - 1] == "-":
            return None
        labels += 1
        if _at(text, j) == "." and _at(text, j + 1).isalnum():
            j += 1
            continue
        break
    tld = text[label_start:j]
    if labels < 2 or len(tld) < 2 or not tld.isalpha() or _at(text, j) in ("_", "@"):
        return None
    return ("EMAIL", start, j)


# Tie-break order when two candidates from one position end at the same place.
_MATCHERS: tuple[Callable[[str, int], Span | None], ...] = (
    _pem,
    _api_key,
    _jwt,
    _bearer,
    _email,
    _iban,
    _card,
    _ssn,
    _international_phone,
    _nanp_phone,
    _ipv6,
    _ipv4,
)
_STARTS = frozenset("+(:-") | _LOCAL_PUNCT


def scan(text: str) -> list[Span]:
    """Findings ``(kind, start, end)`` in code-point offsets, sorted and non-overlapping."""
    out: list[Span] = []
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        # Nothing begins inside a word, and only a few punctuation marks begin anything.
        if (_is_word(c) and i and _is_word(text[i - 1])) or (not _is_word(c) and c not in _STARTS):
            i += 1
            continue
        best: Span | None = None
        for matcher in _MATCHERS:
            found = matcher(text, i)
            if found is not None and (best is None or found[2] > best[2]):
                best = found
        if best is None:
            i += 1
        else:
            out.append(best)
            i = best[2]
    return out


def redact_labels(text: str) -> str:
    """Replace every finding by ``[KIND]``; the same object comes back when nothing is found."""
    spans = scan(text)
    if not spans:
        return text
    parts: list[str] = []
    pos = 0
    for kind, start, end in spans:
        parts.append(text[pos:start])
        parts.append("[" + kind + "]")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)
