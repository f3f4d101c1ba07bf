# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, infer_types=False
"""One-pass PII scanner over the code points of a str (compiled twin of ``_scan_py.py``).

Every function here is a typed port of the function of the same name in
``src/strongroom/privacy/_scan_py.py``, which is the specification; the Hypothesis tests check
that both give the same findings for every input. The text is read straight from the str's
buffer (1, 2 or 4 bytes per code point, one specialisation each through a fused type), no Python
object is created while scanning, and a word that cannot start a finding is skipped in one loop.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t
from libc.stdlib cimport free, realloc

cdef extern from "Python.h":
    int _unicode_kind "PyUnicode_KIND"(object text)
    void* _unicode_data "PyUnicode_DATA"(object text)
    bint _uni_isalnum "Py_UNICODE_ISALNUM"(uint32_t ch) nogil
    bint _uni_isalpha "Py_UNICODE_ISALPHA"(uint32_t ch) nogil

ctypedef fused cp_t:
    uint8_t
    uint16_t
    uint32_t

# Kinds, in tie-break order (lower wins when two candidates end at the same place).
cdef enum:
    K_CREDENTIAL = 0
    K_EMAIL = 1
    K_IBAN = 2
    K_CARD = 3
    K_SSN = 4
    K_PHONE = 5
    K_IPV6 = 6
    K_IPV4 = 7

_KIND_NAMES = ("CREDENTIAL", "EMAIL", "IBAN", "CARD", "SSN", "PHONE", "IPV6", "IPV4")
_LABELS = tuple("[" + name + "]" for name in _KIND_NAMES)

cdef enum:
    NONE = 0x110000  # "outside the text": past the last code point, in no class
    MAX_CARD_DIGITS = 19
    MAX_PHONE_DIGITS = 15
    MAX_IBAN = 34
    MIN_IBAN = 15
    MIN_BEARER = 8
    MAX_PEM_LABEL = 64

# ASCII classes as bit flags, one table lookup per code point below 128.
cdef enum:
    C_DIGIT = 1
    C_HEX = 2
    C_UPPER = 4
    C_ALNUM = 8
    C_LOCALP = 16  # . _ % + -  (besides letters and digits, in an email's local part)
    C_B64URL = 32
    C_B64TOK = 64  # RFC 6750 b64token extras . ~ + /
    C_LHEX = 128
    C_INERT = 256  # begins nothing and is no word character: space, quotes, brackets, ...

# What a word may start, by its first ASCII character.
cdef enum:
    W_JWT = 1
    W_KEY = 2
    W_BEARER = 4
    W_IBAN = 8
    W_DIGIT = 16
    W_HEX = 32

cdef uint16_t ASCII[128]
cdef uint8_t WORD_START[128]


cdef void _init_ascii():
    cdef int c
    for c in range(128):
        ASCII[c] = 0
    for c in range(48, 58):
        ASCII[c] |= C_DIGIT | C_HEX | C_ALNUM | C_B64URL | C_LHEX
    for c in range(65, 91):
        ASCII[c] |= C_UPPER | C_ALNUM | C_B64URL
    for c in range(97, 123):
        ASCII[c] |= C_ALNUM | C_B64URL
    for c in range(65, 71):
        ASCII[c] |= C_HEX
    for c in range(97, 103):
        ASCII[c] |= C_HEX | C_LHEX
    for c in b"._%+-":
        ASCII[c] |= C_LOCALP
    ASCII[45] |= C_B64URL
    ASCII[95] |= C_B64URL
    for c in b".~+/":
        ASCII[c] |= C_B64TOK
    for c in range(128):
        WORD_START[c] = 0
        if not (ASCII[c] & (C_ALNUM | C_LOCALP)) and c not in b"(:":
            ASCII[c] |= C_INERT
    WORD_START[101] = W_JWT
    WORD_START[115] = W_KEY
    WORD_START[66] = W_BEARER
    WORD_START[98] = W_BEARER
    for c in range(65, 91):
        WORD_START[c] |= W_IBAN
    for c in range(48, 58):
        WORD_START[c] |= W_DIGIT | W_HEX
    for c in b"abcdefABCDEF":
        WORD_START[c] |= W_HEX


_init_ascii()


cdef inline bint has(uint32_t c, uint16_t flag) noexcept nogil:
    return c < 128 and (ASCII[c] & flag) != 0


cdef inline bint is_digit(uint32_t c) noexcept nogil:
    return c - 48 < 10


cdef inline bint is_alnum(uint32_t c) noexcept nogil:
    if c < 128:
        return (ASCII[c] & C_ALNUM) != 0
    return c <= 0x10FFFF and _uni_isalnum(c)


cdef inline bint is_alpha(uint32_t c) noexcept nogil:
    if c < 128:
        return (ASCII[c] & C_ALNUM) != 0 and not is_digit(c)
    return c <= 0x10FFFF and _uni_isalpha(c)


cdef inline bint is_word(uint32_t c) noexcept nogil:
    return c == 95 or is_alnum(c)


cdef inline bint is_local(uint32_t c) noexcept nogil:
    return has(c, C_LOCALP) or is_alnum(c)


cdef inline bint is_b64token(uint32_t c) noexcept nogil:
    return has(c, C_B64URL | C_B64TOK)


cdef inline uint32_t at(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    if 0 <= i < n:
        return s[i]
    return NONE


cdef inline bint starts(const cp_t* s, Py_ssize_t n, Py_ssize_t i, const char* lit) noexcept nogil:
    cdef Py_ssize_t k = 0
    while lit[k] != 0:
        if i + k >= n or s[i + k] != <uint8_t>lit[k]:
            return False
        k += 1
    return True


cdef inline bint num_left_ok(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t prev = at(s, n, i - 1)
    if is_word(prev):
        return False
    return not ((prev == 46 or prev == 45) and is_digit(at(s, n, i - 2)))


cdef inline bint num_right_ok(const cp_t* s, Py_ssize_t n, Py_ssize_t j) noexcept nogil:
    cdef uint32_t nxt = at(s, n, j)
    if is_word(nxt):
        return False
    return not ((nxt == 46 or nxt == 45) and is_digit(at(s, n, j + 1)))


cdef inline bint is_sep(uint32_t c, bint allow_dot) noexcept nogil:
    return c == 32 or c == 45 or (allow_dot and c == 46)


cdef Py_ssize_t digit_run(const cp_t* s, Py_ssize_t n, Py_ssize_t i, bint allow_dot,
                          int limit, uint8_t* digits, int* count) noexcept nogil:
    """Digits from ``i`` with single separators between them; stops once past ``limit``."""
    cdef Py_ssize_t j = i
    cdef int cnt = 0
    while cnt <= limit:
        while j < n and is_digit(s[j]):
            if cnt < 24:
                digits[cnt] = <uint8_t>(s[j] - 48)
            cnt += 1
            j += 1
        if j + 1 < n and is_sep(s[j], allow_dot) and is_digit(s[j + 1]):
            j += 1
            continue
        break
    count[0] = cnt
    return j


cdef bint luhn_ok(const uint8_t* digits, int count) noexcept nogil:
    cdef int total = 0, pos, d
    for pos in range(count):
        d = digits[count - 1 - pos]
        if pos % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


cdef inline int iban_value(uint32_t c) noexcept nogil:
    return <int>c - 48 if is_digit(c) else <int>c - 55


cdef bint iban_ok(const uint32_t* chars, int count) noexcept nogil:
    cdef int rem = 0, k, v
    for k in range(count):
        v = iban_value(chars[(k + 4) % count])
        rem = (rem * (10 if v < 10 else 100) + v) % 97
    return rem == 1


cdef Py_ssize_t m_card(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint8_t digits[24]
    cdef int count = 0
    cdef Py_ssize_t j
    if not is_digit(s[i]) or not num_left_ok(s, n, i):
        return -1
    j = digit_run(s, n, i, False, MAX_CARD_DIGITS, digits, &count)
    if 13 <= count <= MAX_CARD_DIGITS and num_right_ok(s, n, j) and luhn_ok(digits, count):
        return j
    return -1


cdef inline bint digits_at(const cp_t* s, Py_ssize_t n, Py_ssize_t i, int count) noexcept nogil:
    cdef int k
    for k in range(count):
        if not is_digit(at(s, n, i + k)):
            return False
    return True


cdef Py_ssize_t m_ssn(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t sep = at(s, n, i + 3)
    if not num_left_ok(s, n, i):
        return -1
    if (sep != 32 and sep != 45) or at(s, n, i + 6) != sep:
        return -1
    if not (digits_at(s, n, i, 3) and digits_at(s, n, i + 4, 2) and digits_at(s, n, i + 7, 4)):
        return -1
    if s[i] == 57 or (s[i] == 48 and s[i + 1] == 48 and s[i + 2] == 48):
        return -1
    if s[i] == 54 and s[i + 1] == 54 and s[i + 2] == 54:
        return -1
    if s[i + 4] == 48 and s[i + 5] == 48:
        return -1
    if s[i + 7] == 48 and s[i + 8] == 48 and s[i + 9] == 48 and s[i + 10] == 48:
        return -1
    return i + 11 if num_right_ok(s, n, i + 11) else -1


cdef Py_ssize_t m_intl_phone(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint8_t digits[24]
    cdef int count = 0
    cdef Py_ssize_t j
    if s[i] != 43 or not num_left_ok(s, n, i) or not is_digit(at(s, n, i + 1)):
        return -1
    if s[i + 1] == 48:
        return -1
    j = digit_run(s, n, i + 1, True, MAX_PHONE_DIGITS, digits, &count)
    if 8 <= count <= MAX_PHONE_DIGITS and num_right_ok(s, n, j):
        return j
    return -1


cdef inline bint nxx(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t c = at(s, n, i)
    return is_digit(c) and c >= 50 and is_digit(at(s, n, i + 1)) and is_digit(at(s, n, i + 2))


cdef inline bint phone_sep(uint32_t c) noexcept nogil:
    return c == 45 or c == 46 or c == 32


cdef Py_ssize_t m_nanp_phone(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t j = i
    cdef uint32_t sep
    if not num_left_ok(s, n, i):
        return -1
    if s[j] == 43:
        if at(s, n, j + 1) != 49:
            return -1
        j += 2
        if phone_sep(at(s, n, j)):
            j += 1
    elif s[j] == 49 and phone_sep(at(s, n, j + 1)):
        j += 2
    if at(s, n, j) == 40:
        if not nxx(s, n, j + 1) or at(s, n, j + 4) != 41:
            return -1
        j += 5
        if at(s, n, j) == 32:
            j += 1
        if not nxx(s, n, j):
            return -1
        if not phone_sep(at(s, n, j + 3)):
            return -1
    else:
        if not nxx(s, n, j):
            return -1
        sep = at(s, n, j + 3)
        if not phone_sep(sep):
            return -1
        j += 4
        if not nxx(s, n, j) or at(s, n, j + 3) != sep:
            return -1
    if not digits_at(s, n, j + 4, 4):
        return -1
    return j + 8 if num_right_ok(s, n, j + 8) else -1


cdef Py_ssize_t ipv4_end(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """End of a dotted quad starting at ``i`` (octets 0–255, 1–3 digits), or -1."""
    cdef Py_ssize_t j = i, start
    cdef int octet, value
    for octet in range(4):
        if octet:
            if at(s, n, j) != 46 or not is_digit(at(s, n, j + 1)):
                return -1
            j += 1
        start = j
        value = 0
        while is_digit(at(s, n, j)) and j - start <= 3:
            value = value * 10 + <int>(s[j] - 48)
            j += 1
        if j == start or j - start > 3 or value > 255:
            return -1
    return j


cdef Py_ssize_t m_ipv4(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t end
    if not is_digit(s[i]) or not num_left_ok(s, n, i):
        return -1
    end = ipv4_end(s, n, i)
    return end if end > 0 and num_right_ok(s, n, end) else -1


cdef Py_ssize_t m_ipv6(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t prev = at(s, n, i - 1), nxt
    cdef Py_ssize_t j = i, start, quad, k
    cdef int groups = 0
    cdef bint compressed = False, digit = False
    if is_word(prev) or prev == 58:
        return -1
    if starts(s, n, j, b"::"):
        compressed = True
        j += 2
    while groups <= 8:
        start = j
        while has(at(s, n, j), C_HEX) and j - start <= 4:
            j += 1
        if j == start:
            break
        if j - start > 4:
            return -1
        if at(s, n, j) == 46 and groups <= 6:
            quad = ipv4_end(s, n, start)
            if quad > 0:
                groups += 2
                j = quad
                break
        groups += 1
        if not compressed and starts(s, n, j, b"::"):
            compressed = True
            j += 2
        elif at(s, n, j) == 58 and has(at(s, n, j + 1), C_HEX):
            j += 1
        else:
            break
    if groups == 0 or (groups > 7 if compressed else groups != 8):
        return -1
    nxt = at(s, n, j)
    if is_word(nxt) or nxt == 58 or (nxt == 46 and is_digit(at(s, n, j + 1))):
        return -1
    for k in range(i, j):
        if is_digit(s[k]):
            digit = True
            break
    return j if digit else -1


cdef Py_ssize_t m_iban(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t chars[40]
    cdef Py_ssize_t ends[40]
    cdef int counts[40]
    cdef int count = 0, found = 0, size, g
    cdef Py_ssize_t j = i, k
    if not (has(s[i], C_UPPER) and has(at(s, n, i + 1), C_UPPER)
            and is_digit(at(s, n, i + 2)) and is_digit(at(s, n, i + 3))):
        return -1
    if is_word(at(s, n, i - 1)):
        return -1
    while has(at(s, n, j), C_UPPER | C_DIGIT) and j - i <= MAX_IBAN:
        chars[j - i] = s[j]
        j += 1
    count = <int>(j - i)
    if count > 4:
        if MIN_IBAN <= count <= MAX_IBAN and not is_word(at(s, n, j)) and iban_ok(chars, count):
            return j
        return -1
    if is_word(at(s, n, j)):
        return -1
    # Grouped form: "DE89 3704 0044 ...", groups of 4 split by one space, the last 1-4 long.
    while at(s, n, j) == 32 and has(at(s, n, j + 1), C_UPPER | C_DIGIT) and count <= MAX_IBAN:
        k = j + 1
        while has(at(s, n, k), C_UPPER | C_DIGIT) and k - j <= 5:
            k += 1
        size = <int>(k - j - 1)
        if size > 4 or is_word(at(s, n, k)):
            break
        for g in range(size):
            chars[count + g] = s[j + 1 + g]
        count += size
        ends[found] = k
        counts[found] = count
        found += 1
        j = k
        if size < 4:
            break
    while found > 0:
        found -= 1
        if MIN_IBAN <= counts[found] <= MAX_IBAN and iban_ok(chars, counts[found]):
            return ends[found]
    return -1


cdef Py_ssize_t m_bearer(const cp_t* s, Py_ssize_t n, Py_ssize_t i,
                         Py_ssize_t* token) noexcept nogil:
    cdef Py_ssize_t start, j
    cdef bint digit = False
    cdef int k
    cdef const char* word = b"bearer"
    if i + 6 > n or is_word(at(s, n, i - 1)):
        return -1
    for k in range(6):
        # ASCII case folding only, as in the twin: a letter's upper case is 32 below it.
        if s[i + k] != <uint8_t>word[k] and s[i + k] != <uint8_t>word[k] - 32:
            return -1
    start = i + 6
    if at(s, n, start) != 32:
        return -1
    while at(s, n, start) == 32:
        start += 1
    j = start
    while is_b64token(at(s, n, j)):
        if is_digit(s[j]):
            digit = True
        j += 1
    while at(s, n, j) == 61:
        j += 1
    if j - start < MIN_BEARER or not digit or is_word(at(s, n, j)):
        return -1
    token[0] = start
    return j


cdef Py_ssize_t m_api_key(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t prev = at(s, n, i - 1), nxt
    cdef int k
    if not starts(s, n, i, b"srk_") or is_word(prev) or prev == 45:
        return -1
    for k in range(16):
        if not has(at(s, n, i + 4 + k), C_LHEX):
            return -1
    if at(s, n, i + 20) != 95:
        return -1
    for k in range(43):
        if not has(at(s, n, i + 21 + k), C_B64URL):
            return -1
    nxt = at(s, n, i + 64)
    if has(nxt, C_B64URL) or is_word(nxt):
        return -1
    return i + 64


cdef Py_ssize_t m_jwt(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef uint32_t prev = at(s, n, i - 1)
    cdef Py_ssize_t j = i, start
    cdef int segments = 0
    if not starts(s, n, i, b"eyJ") or is_word(prev) or prev == 45 or prev == 46:
        return -1
    while True:
        start = j
        while has(at(s, n, j), C_B64URL):
            j += 1
        if j == start:
            return -1
        segments += 1
        if at(s, n, j) == 46 and has(at(s, n, j + 1), C_B64URL):
            j += 1
            continue
        break
    if segments < 3 or is_word(at(s, n, j)):
        return -1
    return j


cdef Py_ssize_t m_pem(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    cdef Py_ssize_t j = i + 11, label, size, k, m
    cdef bint ok
    if not starts(s, n, i, b"-----BEGIN ") or at(s, n, i - 1) == 45:
        return -1
    while (has(at(s, n, j), C_UPPER | C_DIGIT) or at(s, n, j) == 32) and j - i - 11 < MAX_PEM_LABEL:
        j += 1
    label = i + 11
    size = j - label
    if size < 11 or not starts(s, n, j - 11, b"PRIVATE KEY") or not starts(s, n, j, b"-----"):
        return -1
    # Look for "-----END <label>-----"; a block cut short is still a key: redact to the end.
    k = j + 5
    while k + 14 + size <= n:
        if s[k] == 45 and starts(s, n, k, b"-----END "):
            ok = True
            for m in range(size):
                if s[k + 9 + m] != s[label + m]:
                    ok = False
                    break
            if ok and starts(s, n, k + 9 + size, b"-----"):
                return k + 14 + size
        k += 1
    return n


cdef Py_ssize_t m_email(const cp_t* s, Py_ssize_t n, Py_ssize_t i,
                        Py_ssize_t* first) noexcept nogil:
    cdef Py_ssize_t at_sign = i, start, j, label_start, k
    cdef int labels = 0
    cdef uint32_t nxt
    if not is_local(s[i]) or is_local(at(s, n, i - 1)):
        return -1
    while is_local(at(s, n, at_sign)):
        at_sign += 1
    if at(s, n, at_sign) != 64:
        return -1
    start = i
    while start < at_sign and not is_alnum(s[start]):
        start += 1
    if start == at_sign:
        return -1
    j = at_sign + 1
    label_start = j
    while True:
        label_start = j
        while at(s, n, j) == 45 or is_alnum(at(s, n, j)):
            j += 1
        if j == label_start or s[label_start] == 45 or s[j - 1] == 45:
            return -1
        labels += 1
        if at(s, n, j) == 46 and is_alnum(at(s, n, j + 1)):
            j += 1
            continue
        break
    if labels < 2 or j - label_start < 2:
        return -1
    for k in range(label_start, j):
        if not is_alpha(s[k]):
            return -1
    nxt = at(s, n, j)
    if nxt == 95 or nxt == 64:
        return -1
    first[0] = start
    return j


cdef struct Hit:
    int kind
    Py_ssize_t start
    Py_ssize_t end


cdef struct Hits:
    Hit* items
    Py_ssize_t size
    Py_ssize_t cap


cdef int push(Hits* hits, int kind, Py_ssize_t start, Py_ssize_t end) except -1:
    cdef Hit* grown
    if hits.size == hits.cap:
        hits.cap = hits.cap * 2 if hits.cap else 16
        grown = <Hit*>realloc(hits.items, hits.cap * sizeof(Hit))
        if grown == NULL:
            raise MemoryError()
        hits.items = grown
    hits.items[hits.size].kind = kind
    hits.items[hits.size].start = start
    hits.items[hits.size].end = end
    hits.size += 1
    return 0


cdef inline void consider(Hit* best, int kind, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    # Matchers are tried in tie-break order, so only a strictly longer reach replaces the best.
    if end > best.end:
        best.kind = kind
        best.start = start
        best.end = end


cdef int scan_impl(const cp_t* s, Py_ssize_t n, Hits* hits) except -1:
    cdef Py_ssize_t i = 0, word_end, end, start
    cdef uint32_t c, after
    cdef uint8_t ws
    cdef Hit best
    best.kind = 0
    best.start = 0
    while i < n:
        c = s[i]
        if c < 128 and (ASCII[c] & C_INERT):
            # Spaces, quotes, brackets, commas...: the bulk of what is not a word.
            i += 1
            continue
        best.end = -1
        if is_word(c):
            # A word start: find the word's end first; nothing can begin inside it.
            word_end = i + 1
            while word_end < n and is_word(s[word_end]):
                word_end += 1
            ws = WORD_START[c] if c < 128 else 0
            if ws & W_JWT:
                consider(&best, K_CREDENTIAL, i, m_jwt(s, n, i))
            if ws & W_KEY:
                consider(&best, K_CREDENTIAL, i, m_api_key(s, n, i))
            if ws & W_BEARER:
                end = m_bearer(s, n, i, &start)
                if end > best.end:
                    best.kind = K_CREDENTIAL
                    best.start = start
                    best.end = end
            after = at(s, n, word_end)
            if after == 64 or has(after, C_LOCALP):
                end = m_email(s, n, i, &start)
                if end > best.end:
                    best.kind = K_EMAIL
                    best.start = start
                    best.end = end
            if ws & W_IBAN:
                consider(&best, K_IBAN, i, m_iban(s, n, i))
            if ws & W_DIGIT:
                consider(&best, K_CARD, i, m_card(s, n, i))
                consider(&best, K_SSN, i, m_ssn(s, n, i))
                consider(&best, K_PHONE, i, m_nanp_phone(s, n, i))
            # An address needs its first group (this whole word) followed by ':' or '.'.
            if (ws & W_HEX) and word_end - i <= 4 and (after == 58 or after == 46):
                consider(&best, K_IPV6, i, m_ipv6(s, n, i))
            if (ws & W_DIGIT) and after == 46:
                consider(&best, K_IPV4, i, m_ipv4(s, n, i))
            if best.end < 0:
                i = word_end
                continue
        elif c < 128:
            if c == 45:
                consider(&best, K_CREDENTIAL, i, m_pem(s, n, i))
            if c != 40 and c != 58:
                end = m_email(s, n, i, &start)
                if end > best.end:
                    best.kind = K_EMAIL
                    best.start = start
                    best.end = end
            if c == 43:
                consider(&best, K_PHONE, i, m_intl_phone(s, n, i))
            if c == 43 or c == 40:
                consider(&best, K_PHONE, i, m_nanp_phone(s, n, i))
            if c == 58:
                consider(&best, K_IPV6, i, m_ipv6(s, n, i))
        if best.end < 0:
            i += 1
        else:
            push(hits, best.kind, best.start, best.end)
            i = best.end
    return 0


cdef int scan_str(str text, Hits* hits) except -1:
    cdef int kind = _unicode_kind(text)
    cdef void* data = _unicode_data(text)
    cdef Py_ssize_t n = len(text)
    if kind == 1:
        return scan_impl(<const uint8_t*>data, n, hits)
    if kind == 2:
        return scan_impl(<const uint16_t*>data, n, hits)
    return scan_impl(<const uint32_t*>data, n, hits)


def scan(str text not None):
    """Findings ``(kind, start, end)`` in code-point offsets, sorted and non-overlapping."""
    cdef Hits hits
    cdef Py_ssize_t k
    cdef list out = []
    hits.items = NULL
    hits.size = hits.cap = 0
    try:
        scan_str(text, &hits)
        for k in range(hits.size):
            out.append((_KIND_NAMES[hits.items[k].kind], hits.items[k].start, hits.items[k].end))
    finally:
        free(hits.items)
    return out


def redact_labels(str text not None):
    """Replace every finding by ``[KIND]``; the same object comes back when nothing is found."""
    cdef Hits hits
    cdef Py_ssize_t k, pos = 0
    cdef list parts
    hits.items = NULL
    hits.size = hits.cap = 0
    try:
        scan_str(text, &hits)
        if hits.size == 0:
            return text
        parts = []
        for k in range(hits.size):
            parts.append(text[pos:hits.items[k].start])
            parts.append(_LABELS[hits.items[k].kind])
            pos = hits.items[k].end
        parts.append(text[pos:])
    finally:
        free(hits.items)
    return "".join(parts)
