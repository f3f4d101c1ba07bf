# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, infer_types=False
"""One-pass PII scanner over the code points of a str (compiled twin of ``_scan_py.py``).

Every matcher here is a typed port of its twin in ``src/strongroom/privacy/_scan_py.py``, which
is the specification; ``scan_impl`` reports what the twin's ``scan`` reports while visiting far
fewer positions, and the Hypothesis tests check that both agree on every input. The text is read straight from the str's
buffer (1, 2 or 4 bytes per code point, one specialisation each through a fused type), no Python
object is created while scanning, and the main loop only stops where a finding can begin: the
positions are picked out 64 code points at a time (``next_trigger``), and an email is looked for
from its ``@`` backwards instead of at every word. ``native/README.md`` explains the strategy.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from libc.string cimport memcpy

cdef extern from "Python.h":
    int _unicode_kind "PyUnicode_KIND"(object text)
    void* _unicode_data "PyUnicode_DATA"(object text)
    bint _unicode_is_ascii "PyUnicode_IS_ASCII"(object text)
    str _unicode_new "PyUnicode_New"(Py_ssize_t size, uint32_t maxchar)
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

cdef uint16_t ASCII[128]


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
_init_ascii()


# Where the main loop stops, computed for 64 code points at a time (see ``next_trigger``).
cdef extern from *:
    """
    #include <stdint.h>
    #if !defined(SR_NO_SIMD) && (defined(__SSE2__) || defined(_M_X64) || (defined(_M_IX86_FP) && _M_IX86_FP >= 2))
    #include <emmintrin.h>
    #define SR_SSE2 1
    #endif

    /* One bit per position of a block of up to 64 code points (ASCII classes only). */
    typedef struct { uint64_t word, digit, letter, follow, any, colon, dash; } sr_block;

    static inline void sr_scalar(uint32_t c, uint64_t bit, sr_block *b) {
        uint32_t lc = c | 0x20;
        if (c >= 128) return;
        if (c - '0' < 10u) b->digit |= bit;
        if (c - '0' < 10u || lc - 'a' < 26u || c == '_') b->word |= bit;
        if (c - 'A' < 26u || lc - 'a' < 6u || c == 's') b->letter |= bit;
        if (c - '0' < 10u || c - 'A' < 26u || lc - 'a' < 6u || c == ':' || c == 'r' || c == 'y')
            b->follow |= bit;
        if (c == '+' || c == '(' || c == '@') b->any |= bit;
        if (c == ':') b->colon |= bit;
        if (c == '-') b->dash |= bit;
    }

    #ifdef SR_SSE2
    /* 16 code points to 16 bytes: ASCII stays, anything above saturates to 0x80..0xFF. */
    static inline __m128i sr_load_u8(const uint8_t *s) {
        return _mm_loadu_si128((const __m128i *)s);
    }
    static inline __m128i sr_clamp16(__m128i x) {  /* min(x, 0x80) on unsigned 16-bit lanes */
        return _mm_sub_epi16(x, _mm_subs_epu16(x, _mm_set1_epi16(0x80)));
    }
    static inline __m128i sr_load_u16(const uint16_t *s) {
        return _mm_packus_epi16(sr_clamp16(_mm_loadu_si128((const __m128i *)s)),
                                sr_clamp16(_mm_loadu_si128((const __m128i *)(s + 8))));
    }
    static inline __m128i sr_load_u32(const uint32_t *s) {
        /* code points are at most 0x10FFFF, so the signed 32->16 saturation keeps them >= 128 */
        __m128i a = _mm_packs_epi32(_mm_loadu_si128((const __m128i *)s),
                                    _mm_loadu_si128((const __m128i *)(s + 4)));
        __m128i b = _mm_packs_epi32(_mm_loadu_si128((const __m128i *)(s + 8)),
                                    _mm_loadu_si128((const __m128i *)(s + 12)));
        return _mm_packus_epi16(a, b);
    }
    #define SR_EQ(x, v) _mm_cmpeq_epi8(x, _mm_set1_epi8((char)(v)))
    #define SR_IN(x, lo, hi) _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)((lo) - 1))), \
                                           _mm_cmplt_epi8(x, _mm_set1_epi8((char)((hi) + 1))))
    #define SR_OR(x, y) _mm_or_si128(x, y)
    #define SR_BITS(x) ((uint64_t)(unsigned)_mm_movemask_epi8(x) << shift)
    /* Bytes >= 0x80 are negative as signed chars, so no ASCII range or equality admits them. */
    static inline void sr_classify(__m128i x, int shift, sr_block *b) {
        __m128i lc = _mm_or_si128(x, _mm_set1_epi8(0x20));
        __m128i digit = SR_IN(x, '0', '9'), upper = SR_IN(x, 'A', 'Z');
        __m128i hex_letter = SR_IN(lc, 'a', 'f'), colon = SR_EQ(x, ':');
        b->digit |= SR_BITS(digit);
        b->word |= SR_BITS(SR_OR(SR_OR(digit, SR_IN(lc, 'a', 'z')), SR_EQ(x, '_')));
        b->letter |= SR_BITS(SR_OR(SR_OR(upper, hex_letter), SR_EQ(x, 's')));
        b->follow |= SR_BITS(SR_OR(SR_OR(SR_OR(digit, upper), SR_OR(hex_letter, colon)),
                                   SR_OR(SR_EQ(x, 'r'), SR_EQ(x, 'y'))));
        b->any |= SR_BITS(SR_OR(SR_OR(SR_EQ(x, '+'), SR_EQ(x, '(')), SR_EQ(x, '@')));
        b->colon |= SR_BITS(colon);
        b->dash |= SR_BITS(SR_EQ(x, '-'));
    }
    #define SR_VECTOR(T) for (; k + 16 <= len; k += 16) sr_classify(sr_load_##T(s + base + k), (int)k, &b);
    #else
    #define SR_VECTOR(T)
    #endif

    /* Positions of [base, base + 64) where the main loop must stop (bit k: base + k). */
    static inline uint64_t sr_stops(const sr_block *b, int prev_word) {
        const uint64_t last = (uint64_t)1 << 63;  /* its successor is not in the block: keep it */
        uint64_t boundary = ~((b->word << 1) | (uint64_t)prev_word);
        return b->any | (b->colon & ((b->colon >> 1) | last)) | (b->dash & ((b->dash >> 1) | last))
               | (boundary & (b->digit | (b->letter & ((b->follow >> 1) | last))));
    }

    #define SR_STOPS(T, CP) \
    static inline uint64_t sr_stops_##T(const CP *s, Py_ssize_t n, Py_ssize_t base) { \
        sr_block b = {0, 0, 0, 0, 0, 0, 0}; \
        sr_block prev = {0, 0, 0, 0, 0, 0, 0}; \
        Py_ssize_t k = 0, len = n - base < 64 ? n - base : 64; \
        SR_VECTOR(T) \
        for (; k < len; k++) sr_scalar(s[base + k], (uint64_t)1 << k, &b); \
        if (base > 0) sr_scalar(s[base - 1], 1, &prev); \
        return sr_stops(&b, (int)(prev.word & 1)); \
    }
    SR_STOPS(u8, uint8_t)
    SR_STOPS(u16, uint16_t)
    SR_STOPS(u32, uint32_t)

    static inline int sr_ctz64(uint64_t x) {
    #if defined(_MSC_VER) && !defined(__clang__)
        unsigned long k;
        _BitScanForward64(&k, x);
        return (int)k;
    #else
        return __builtin_ctzll(x);
    #endif
    }
    """
    uint64_t sr_stops_u8(const uint8_t* s, Py_ssize_t n, Py_ssize_t base) noexcept nogil
    uint64_t sr_stops_u16(const uint16_t* s, Py_ssize_t n, Py_ssize_t base) noexcept nogil
    uint64_t sr_stops_u32(const uint32_t* s, Py_ssize_t n, Py_ssize_t base) noexcept nogil
    int sr_ctz64(uint64_t x) noexcept nogil


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
    # The first four characters go last: chars[4:] + chars[:4], as in the twin.
    cdef int rem = 0, k, v
    for k in range(4, count):
        v = iban_value(chars[k])
        rem = (rem * (10 if v < 10 else 100) + v) % 97
    for k in range(4):
        v = iban_value(chars[k])
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


cdef struct Block:
    Py_ssize_t base  # first position of the block
    uint64_t stops  # bit k set: the main loop stops at base + k


cdef inline uint64_t block_stops(const cp_t* s, Py_ssize_t n, Py_ssize_t base) noexcept nogil:
    if cp_t is uint8_t:
        return sr_stops_u8(s, n, base)
    elif cp_t is uint16_t:
        return sr_stops_u16(s, n, base)
    else:
        return sr_stops_u32(s, n, base)


cdef inline Py_ssize_t next_trigger(const cp_t* s, Py_ssize_t n, Py_ssize_t i,
                                    Block* block) noexcept nogil:
    """First position from ``i`` where a finding may begin, or an ``@``; ``n`` if none.

    The positions are those of ``+``, ``(``, ``@``, of ``::`` and ``--``, and of the code points
    that begin a finding at a word start (digits; ``A``-``Z``, ``a``-``f`` and ``s`` when the next
    code point is a hex digit, an uppercase letter, ``:``, ``r`` or ``y``) when the code point
    before is not an ASCII word character (a non-ASCII one is let through: the caller asks
    Unicode about it). They are computed for 64 code points at a time (``sr_stops_*``: SSE2 where
    available), so the letters of words, spaces and non-ASCII text cost a fraction of a cycle.
    """
    cdef uint64_t rest
    while i < n:
        if i - block.base >= 64:  # ``i`` only grows, so it is never before the block
            block.base = i
            block.stops = block_stops(s, n, i)
        rest = block.stops >> (i - block.base)
        if rest:
            return i + sr_ctz64(rest)
        i = block.base + 64
    return n


cdef inline bint hex_group_colon(const cp_t* s, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """1-4 hex digits from ``i`` then ``:``: what an IPv6 address that does not open with ``::``
    starts with (a dotted quad in first place is never a whole address)."""
    cdef Py_ssize_t j = i
    while j < n and j - i < 5 and has(s[j], C_HEX):
        j += 1
    return j - i <= 4 and at(s, n, j) == 58


cdef int scan_impl(const cp_t* s, Py_ssize_t n, Hits* hits) except -1:
    """The twin's ``scan``, visiting only the positions where a matcher can succeed.

    The twin tries every matcher at every word start and at ``+(:-._%``. Here ``next_trigger``
    stops only where a matcher other than the email one can begin, and at ``@``. Emails are
    found from their ``@``: the only position an email can begin at is the start of the run of
    local-part characters that ends at the ``@``, and by the time the ``@`` is reached every
    position of that run has been tried and has failed, so the email is what the twin would
    report there. When another matcher succeeds inside such a run first, the run's start is
    checked for an email before that finding is taken: the twin tries the email at that
    earlier (or the same) position first. The run's start is never before ``resumed`` (the end
    of the last finding): the twin does not look back past it either.
    """
    cdef Py_ssize_t i = 0, p, r, end, start, digits
    cdef Py_ssize_t resumed = 0  # where the last finding ended: nothing before it is looked at
    cdef Py_ssize_t run_end = 0  # end of the last local-part run looked at (runs are maximal)
    cdef uint32_t c, prev, after
    cdef Hit best, cred, email
    cdef Block block
    block.base = -64
    block.stops = 0
    best.kind = cred.kind = email.kind = 0
    best.start = cred.start = email.start = 0
    while True:
        p = next_trigger(s, n, i, &block)
        if p >= n:
            return 0
        c = s[p]
        best.end = -1
        if c == 64:
            # '@': the local part is the run of local characters before it (since ``resumed``).
            r = p
            while r > resumed and is_local(s[r - 1]):
                r -= 1
            if r < p:
                end = m_email(s, n, r, &start)
                consider(&best, K_EMAIL, start, end)
        else:
            prev = at(s, n, p - 1)
            if prev >= 128 and is_word(prev) and is_word(c):
                # Inside a word after all (a non-ASCII letter before it).
                i = p + 1
                continue
            cred.end = -1
            if c == 45:
                consider(&cred, K_CREDENTIAL, p, m_pem(s, n, p))
            elif c == 115:
                consider(&cred, K_CREDENTIAL, p, m_api_key(s, n, p))
            elif c == 101:
                consider(&cred, K_CREDENTIAL, p, m_jwt(s, n, p))
            if c == 66 or c == 98:
                end = m_bearer(s, n, p, &start)
                consider(&cred, K_CREDENTIAL, start, end)
            if has(c, C_UPPER) and has(at(s, n, p + 1), C_UPPER) and is_digit(at(s, n, p + 2)):
                consider(&best, K_IBAN, p, m_iban(s, n, p))
            if is_digit(c):
                # What follows the first run of digits rules most matchers out (each test below
                # is a condition the matcher itself would check first).
                digits = 1
                while digits < MAX_CARD_DIGITS and is_digit(at(s, n, p + digits)):
                    digits += 1
                after = at(s, n, p + digits)
                if digits >= 13 or ((after == 32 or after == 45)
                                    and is_digit(at(s, n, p + digits + 1))):
                    consider(&best, K_CARD, p, m_card(s, n, p))
                if digits == 3 and (after == 32 or after == 45):
                    consider(&best, K_SSN, p, m_ssn(s, n, p))
                if phone_sep(after) and (digits == 3 or (digits == 1 and c == 49)):
                    consider(&best, K_PHONE, p, m_nanp_phone(s, n, p))
                if digits <= 4 and (after == 58 or has(after, C_HEX)) and hex_group_colon(s, n, p):
                    consider(&best, K_IPV6, p, m_ipv6(s, n, p))
                if digits <= 3 and after == 46:
                    consider(&best, K_IPV4, p, m_ipv4(s, n, p))
            else:
                if c == 43:
                    consider(&best, K_PHONE, p, m_intl_phone(s, n, p))
                if c == 43 or c == 40:
                    consider(&best, K_PHONE, p, m_nanp_phone(s, n, p))
                if (c == 58 and at(s, n, p + 1) == 58) or (has(c, C_HEX) and hex_group_colon(s, n, p)):
                    consider(&best, K_IPV6, p, m_ipv6(s, n, p))
            if (cred.end >= 0 or best.end >= 0) and has(c, C_ALNUM | C_LOCALP):
                # Could an email begin at or before ``p``, in the local-part run holding it?
                if p >= run_end:
                    run_end = p + 1
                    while run_end < n and is_local(s[run_end]):
                        run_end += 1
                if at(s, n, run_end) == 64:
                    r = p
                    while r > resumed and is_local(s[r - 1]):
                        r -= 1
                    email.end = -1
                    end = m_email(s, n, r, &start)
                    consider(&email, K_EMAIL, start, end)
                    if email.end >= 0 and r < p:
                        best = email  # the earlier start wins
                        cred.end = -1
                    elif email.end > cred.end:
                        cred = email  # same start: the email comes right after credentials
            if cred.end >= best.end and cred.end >= 0:
                best = cred
        if best.end < 0:
            i = p + 1
        else:
            push(hits, best.kind, best.start, best.end)
            i = resumed = best.end


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


cdef uint32_t span_max(const void* data, int kind, Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    """Bitwise OR of the code points in ``[start, end)``: below 128/256/65536 iff their max is."""
    cdef uint32_t acc = 0
    cdef Py_ssize_t k
    if kind == 1:
        for k in range(start, end):
            acc |= (<const uint8_t*>data)[k]
    elif kind == 2:
        for k in range(start, end):
            acc |= (<const uint16_t*>data)[k]
    else:
        for k in range(start, end):
            acc |= (<const uint32_t*>data)[k]
    return acc


cdef void fill(void* out, const void* data, Py_ssize_t n, int kind, const Hits* hits,
               const char* const* labels, const Py_ssize_t* sizes) noexcept nogil:
    """Write ``data[:n]`` with every finding replaced by its label, in the str's own kind."""
    cdef Py_ssize_t k, pos = 0, w = 0, size, m
    cdef const Hit* h
    cdef const char* label
    for k in range(hits.size):
        h = &hits.items[k]
        size = h.start - pos
        memcpy(<char*>out + w * kind, <const char*>data + pos * kind, size * kind)
        w += size
        label = labels[h.kind]
        for m in range(sizes[h.kind]):
            if kind == 1:
                (<uint8_t*>out)[w + m] = <uint8_t>label[m]
            elif kind == 2:
                (<uint16_t*>out)[w + m] = <uint8_t>label[m]
            else:
                (<uint32_t*>out)[w + m] = <uint8_t>label[m]
        w += sizes[h.kind]
        pos = h.end
    memcpy(<char*>out + w * kind, <const char*>data + pos * kind, (n - pos) * kind)


cdef const char* LABEL_CHARS[8]
cdef Py_ssize_t LABEL_SIZES[8]
_LABEL_BYTES = tuple(label.encode("ascii") for label in _LABELS)  # owns what LABEL_CHARS points at


cdef void _init_labels():
    cdef int k
    for k in range(8):
        LABEL_CHARS[k] = <const char*>_LABEL_BYTES[k]
        LABEL_SIZES[k] = len(_LABEL_BYTES[k])


_init_labels()


def redact_labels(str text not None):
    """Replace every finding by ``[KIND]``; the same object comes back when nothing is found.

    The result is written once into a str of the input's kind. Only when the findings removed
    every code point that made the input need that kind (an emoji inside a PEM block, say) is it
    assembled by a join instead, which picks the narrower kind the result must have.
    """
    cdef Hits hits
    cdef Py_ssize_t k, pos = 0, size
    cdef int kind = _unicode_kind(text)
    cdef void* data = _unicode_data(text)
    cdef uint32_t floor, removed = 0, maxchar
    cdef list parts
    cdef str out
    hits.items = NULL
    hits.size = hits.cap = 0
    try:
        scan_str(text, &hits)
        if hits.size == 0:
            return text
        size = len(text)
        for k in range(hits.size):
            size += LABEL_SIZES[hits.items[k].kind] - (hits.items[k].end - hits.items[k].start)
        # The lowest code point that forces the input's representation; if no removed span
        # reaches it, the rest of the text still holds one and the result keeps that kind.
        if kind == 1:
            floor = 0 if _unicode_is_ascii(text) else 128
            maxchar = 127 if floor == 0 else 255
        elif kind == 2:
            floor = 256
            maxchar = 65535
        else:
            floor = 65536
            maxchar = 0x10FFFF
        for k in range(hits.size if floor else 0):
            removed |= span_max(data, kind, hits.items[k].start, hits.items[k].end)
        if removed < floor or floor == 0:
            out = _unicode_new(size, maxchar)
            fill(_unicode_data(out), data, len(text), kind, &hits, LABEL_CHARS, LABEL_SIZES)
            return out
        parts = []
        for k in range(hits.size):
            parts.append(text[pos:hits.items[k].start])
            parts.append(_LABELS[hits.items[k].kind])
            pos = hits.items[k].end
        parts.append(text[pos:])
    finally:
        free(hits.items)
    return "".join(parts)
