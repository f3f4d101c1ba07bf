# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""Per-type masks (compiled twin of ``src/strongroom/privacy/_masks_py.py``, the specification).

Masks run on every record read. A value whose code points are all below U+0100 (the str is
stored one byte per code point) cannot hold a combining mark, joiner or selector, so its
graphemes are its code points and the fast paths below slice it directly; other values are
walked grapheme by grapheme exactly as the twin does.
"""

from libc.stdlib cimport free, malloc
from unicodedata import category as _category

cdef extern from "Python.h":
    int _unicode_kind "PyUnicode_KIND"(object text)
    void* _unicode_data "PyUnicode_DATA"(object text)
    bint _is_ascii "PyUnicode_IS_ASCII"(object text)
    Py_UCS4 _read "PyUnicode_READ"(int kind, const void* data, Py_ssize_t i) nogil
    object _from_ucs4 "PyUnicode_FromKindAndData"(int kind, const void* buffer, Py_ssize_t size)
    bint _uni_isdecimal "Py_UNICODE_ISDECIMAL"(Py_UCS4 ch) nogil
    bint _uni_isspace "Py_UNICODE_ISSPACE"(Py_UCS4 ch) nogil


cdef struct View:
    int kind
    const void* data
    Py_ssize_t n


cdef inline View view(str value):
    cdef View v
    v.kind = _unicode_kind(value)
    v.data = _unicode_data(value)
    v.n = len(value)
    return v


cdef inline Py_UCS4 rd(const View* v, Py_ssize_t i) noexcept nogil:
    return _read(v.kind, v.data, i)


cdef inline bint is_decimal(Py_UCS4 c) noexcept nogil:
    if c < 128:
        return 48 <= c <= 57
    return _uni_isdecimal(c)


cdef inline bint is_space(Py_UCS4 c) noexcept nogil:
    if c < 128:
        return c == 32 or 9 <= c <= 13 or 28 <= c <= 31
    return _uni_isspace(c)


cdef enum:
    ZWJ = 0x200D
    BULLET_CP = 0x2022

cdef str BULLET = "\u2022"
cdef str FULL = BULLET * 8
cdef str BULLETS3 = BULLET * 3
cdef str BULLETS4 = BULLET * 4
cdef str BULLETS5 = BULLET * 5
cdef str CARD_PREFIX = "•••• •••• •••• "
cdef str SSN_PREFIX = "•••-••-"
cdef frozenset MARKS = frozenset({"Mn", "Mc", "Me"})

POLICIES = frozenset({"partial", "full", "redact"})
cdef dict LABELS = {
    "email": "[EMAIL]",
    "card": "[CARD]",
    "ssn": "[SSN]",
    "phone": "[PHONE]",
    "iban": "[IBAN]",
    "name": "[NAME]",
    "text": "[TEXT]",
    "date": "[DATE]",
    "number": "[NUMBER]",
    "boolean": "[BOOLEAN]",
}
cdef str UNKNOWN_LABEL = "[REDACTED]"


cdef bint extends_cluster(Py_UCS4 cp) except -1:
    if cp < 0x300:
        return False
    if (cp == ZWJ or 0xFE00 <= cp <= 0xFE0F or 0x1F3FB <= cp <= 0x1F3FF
            or 0xE0020 <= cp <= 0xE007F or 0xE0100 <= cp <= 0xE01EF):
        return True
    # CJK ideographs and Hangul syllables are letters in every Unicode version: skip the lookup.
    if 0x3400 <= cp <= 0x4DBF or 0x4E00 <= cp <= 0x9FFF or 0xAC00 <= cp <= 0xD7A3:
        return False
    return _category(chr(cp)) in MARKS


cdef Py_ssize_t cluster_end(const View* v, Py_ssize_t start, Py_ssize_t n) except -1:
    """End (exclusive) of the grapheme at ``start``, looking no further than ``n``."""
    cdef Py_ssize_t j = start + 1
    if v.kind == 1:
        # One byte per code point: all below U+0100, none extends a grapheme.
        return j if j <= n else n
    while j < n:
        if rd(v, j - 1) != ZWJ and not extends_cluster(rd(v, j)):
            break
        j += 1
    return j


cdef struct Out:
    Py_UCS4* buf
    Py_ssize_t size


cdef inline void put(Out* out, Py_UCS4 c) noexcept nogil:
    out.buf[out.size] = c
    out.size += 1


cdef inline void put_n(Out* out, Py_UCS4 c, Py_ssize_t count) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(count):
        out.buf[out.size + k] = c
    out.size += count


cdef inline void copy(Out* out, const View* v, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t k
    for k in range(start, end):
        out.buf[out.size] = rd(v, k)
        out.size += 1


cdef enum:
    STACK = 128

# Each mask computes an upper bound of its output, writes code points into one buffer (on the
# stack when small) and makes one str from it: one allocation per masked value.
cdef inline Py_UCS4* reserve(Py_UCS4* stack, Py_ssize_t need) except NULL:
    cdef Py_UCS4* buf
    if need <= STACK:
        return stack
    buf = <Py_UCS4*>malloc(need * sizeof(Py_UCS4))
    if buf == NULL:
        raise MemoryError()
    return buf


cdef inline str finish(Out* out, Py_UCS4* stack):
    try:
        return _from_ucs4(4, out.buf, out.size)
    finally:
        if out.buf != stack:
            free(out.buf)


cdef str generic(const View* v, str value):
    cdef Py_ssize_t n = v.n, i = 0, count = 0
    cdef Py_ssize_t starts[4]
    if v.kind == 1:
        return BULLETS4 + value[n - 4:] if n >= 8 else FULL
    while i < n:
        starts[count % 4] = i
        count += 1
        i = cluster_end(v, i, n)
    if count < 8:
        return FULL
    return BULLETS4 + value[starts[(count - 4) % 4]:]


cpdef str mask_generic(str value):
    """``••••`` plus the last 4 graphemes when there are at least 8, else 8 bullets."""
    cdef View v = view(value)
    return generic(&v, value)


cpdef str mask_email(str value):
    """``john.doe@example.com`` → ``j•••@e•••••.com``; fixed bullet counts hide the length."""
    cdef View v = view(value)
    cdef Py_ssize_t n = v.n, at = n - 1, dot, end
    cdef Py_UCS4 stack[STACK]
    cdef Out out
    while at >= 0 and rd(&v, at) != 64:
        at -= 1
    if at < 0:
        return generic(&v, value)
    dot = n - 1
    while dot > at and rd(&v, dot) != 46:
        dot -= 1
    out.buf = reserve(stack, n + 10)
    out.size = 0
    if at > 0:
        copy(&out, &v, 0, cluster_end(&v, 0, at))
    put_n(&out, BULLET_CP, 3)
    put(&out, 64)
    if at + 1 < n:
        copy(&out, &v, at + 1, cluster_end(&v, at + 1, n))
    put_n(&out, BULLET_CP, 5)
    if dot > at:
        copy(&out, &v, dot, n)
    return finish(&out, stack)


cdef str last_digits(str value, Py_ssize_t minimum, bint exact):
    """The last 4 decimal digits if the value has ``minimum`` (or exactly so many) of them."""
    cdef View v = view(value)
    cdef Py_ssize_t i, total = 0
    cdef Py_UCS4 buf[4]
    cdef Py_UCS4 c
    cdef int got = 0
    for i in range(v.n):
        if is_decimal(rd(&v, i)):
            total += 1
    if total < minimum or (exact and total != minimum):
        return BULLETS4
    i = v.n - 1
    while got < 4:
        c = rd(&v, i)
        if is_decimal(c):
            got += 1
            buf[4 - got] = c
        i -= 1
    return _from_ucs4(4, buf, 4)


cpdef str mask_card(str value):
    """Keep the last 4 digits (PCI DSS), only digits counted; fewer than 8 digits → all masked."""
    return CARD_PREFIX + last_digits(value, 8, False)


cpdef str mask_ssn(str value):
    """``•••-••-6789``: the serial is kept only when the value holds exactly 9 digits."""
    return SSN_PREFIX + last_digits(value, 9, True)


cpdef str mask_phone(str value):
    """Every digit but the last 4 becomes ``•``, other characters stay; < 7 digits → all masked."""
    cdef View v = view(value)
    cdef Py_ssize_t n = v.n, i = 0, j, total = 0, seen = 0, keep_from
    cdef Py_UCS4 stack[STACK]
    cdef Out out
    while i < n:
        if is_decimal(rd(&v, i)):
            total += 1
        i = cluster_end(&v, i, n)
    keep_from = total - 4 if total >= 7 else total
    out.buf = reserve(stack, n)
    out.size = 0
    i = 0
    while i < n:
        j = cluster_end(&v, i, n)
        if is_decimal(rd(&v, i)):
            seen += 1
            if seen <= keep_from:
                # A masked digit takes the marks attached to it along.
                put(&out, BULLET_CP)
                i = j
                continue
        copy(&out, &v, i, j)
        i = j
    return finish(&out, stack)


cpdef str mask_iban(str value):
    """Country code, ``•`` for the middle, last 4, no whitespace; < 15 graphemes → 8 bullets."""
    cdef View v = view(value)
    cdef Py_ssize_t n = v.n, i, size = 0
    cdef Py_UCS4 stack[STACK]
    cdef Py_UCS4 stack2[STACK]
    cdef Out compact, out
    cdef View cv
    cdef Py_ssize_t count = 0, second = 0
    cdef Py_ssize_t starts[4]
    cdef Py_UCS4 c
    cdef str packed
    compact.buf = reserve(stack, n)
    compact.size = 0
    for i in range(n):
        c = rd(&v, i)
        if not is_space(c):
            put(&compact, c)
    size = compact.size
    if v.kind == 1:
        if size < 15:
            if compact.buf != stack:
                free(compact.buf)
            return FULL
        out.buf = reserve(stack2, size)
        out.size = 0
        put(&out, compact.buf[0])
        put(&out, compact.buf[1])
        put_n(&out, BULLET_CP, size - 6)
        for i in range(size - 4, size):
            put(&out, compact.buf[i])
        if compact.buf != stack:
            free(compact.buf)
        return finish(&out, stack2)
    packed = finish(&compact, stack)
    cv = view(packed)
    i = 0
    while i < size:
        starts[count % 4] = i
        count += 1
        i = cluster_end(&cv, i, size)
        if count == 2:
            second = i
    if count < 15:
        return FULL
    return packed[:second] + BULLET * (count - 6) + packed[starts[(count - 4) % 4]:]


cpdef str mask_name(str value):
    """Initials: ``John Ronald Tolkien`` → ``J. R. T.``; no part → 8 bullets."""
    cdef View v
    cdef Py_ssize_t i
    cdef Py_UCS4 c, prev = 32
    cdef Py_UCS4 stack[STACK]
    cdef Out out
    cdef list parts
    cdef str part
    if _is_ascii(value):
        # ASCII: initials are single characters whose upper case is one character too.
        v = view(value)
        out.buf = reserve(stack, v.n * 3)
        out.size = 0
        for i in range(v.n):
            c = rd(&v, i)
            if not is_space(c) and is_space(prev):
                if out.size:
                    put(&out, 32)
                put(&out, <Py_UCS4>(<unsigned int>c - 32) if 97 <= c <= 122 else c)
                put(&out, 46)
            prev = c
        if out.size == 0:
            if out.buf != stack:
                free(out.buf)
            return FULL
        return finish(&out, stack)
    parts = value.split()
    if not parts:
        return FULL
    return " ".join([first(part).upper() + "." for part in parts])


cdef str first(str part):
    cdef View v = view(part)
    return part[:cluster_end(&v, 0, v.n)] if v.n else ""


cdef str partial(str kind, str value):
    if kind == "email":
        return mask_email(value)
    if kind == "card":
        return mask_card(value)
    if kind == "ssn":
        return mask_ssn(value)
    if kind == "phone":
        return mask_phone(value)
    if kind == "iban":
        return mask_iban(value)
    if kind == "name":
        return mask_name(value)
    if kind in _LOWERED:
        return mask_generic(value)
    return partial(kind.lower(), value) if kind != kind.lower() else mask_generic(value)


cdef frozenset _LOWERED = frozenset({"text", "date", "number", "boolean"})


def mask(str kind not None, str value not None, str policy not None = "partial"):
    """Mask ``value`` of field ``kind`` under ``policy`` (``partial`` | ``full`` | ``redact``)."""
    if policy == "partial":
        return partial(kind, value)
    if policy == "full":
        return FULL
    if policy == "redact":
        return LABELS.get(kind.lower(), UNKNOWN_LABEL)
    raise ValueError(f"unknown mask policy {policy!r}; expected one of {sorted(POLICIES)}")
