"""Deterministic generator of text with planted PII and near-misses.

Used by the accuracy test (every planted value must be found, no near-miss may be) and by the
benchmarks (the mixed corpus). Values are generated, never copied from real people: card numbers
get a computed Luhn digit, IBANs computed mod-97 check digits, SSNs valid area/group/serial.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

SEED = 20240515

FIRST = ["john", "maria", "wei", "olga", "ahmed", "zoë", "josé", "li", "amélie", "kenji"]
LAST = ["doe", "smith", "garcía", "müller", "chen", "nakamura", "o-neil", "ivanov"]
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "exämple.de", "beispiel.co.uk"]
WORDS = [
    "the",
    "account",
    "holder",
    "asked",
    "about",
    "an",
    "invoice",
    "refund",
    "order",
    "shipment",
    "delayed",
    "because",
    "the",
    "warehouse",
    "closed",
    "early",
    "please",
    "review",
    "ticket",
    "status",
    "before",
    "friday",
    "thanks",
    "again",
    "team",
]
NON_ASCII = [
    "Привет, как дела? Заказ отправлен.",
    "请在周五之前审核这张工单，谢谢。",
    "مرحبا، تم شحن الطلب اليوم.",
    "שלום, ההזמנה נשלחה היום.",
    "Grüße aus Köln — café, naïve, façade.",
    "こんにちは、注文は発送されました 👍🏽 👨‍👩‍👧",
]


@dataclass(frozen=True, slots=True)
class Line:
    """One generated line: its text and the (kind, start, end) spans planted in it."""

    text: str
    planted: tuple[tuple[str, int, int], ...]


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit to ``body``."""
    for check in "0123456789":
        digits = body + check
        total = 0
        for pos, ch in enumerate(reversed(digits)):
            d = int(ch)
            if pos % 2:
                d = d * 2 - 9 if d > 4 else d * 2
            total += d
        if total % 10 == 0:
            return digits
    raise AssertionError("unreachable")


def iban_complete(country: str, bban: str) -> str:
    """Compute the two mod-97 check digits of an IBAN."""
    moved = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in moved))
    return f"{country}{98 - number % 97:02d}{bban}"


def group(value: str, size: int, sep: str) -> str:
    return sep.join(value[i : i + size] for i in range(0, len(value), size))


class Generator:
    """Planted values and near-misses of every kind, from one seeded random source."""

    def __init__(self, seed: int = SEED) -> None:
        self.rnd = random.Random(seed)

    def digits(self, count: int) -> str:
        return "".join(self.rnd.choice(string.digits) for _ in range(count))

    def email(self) -> str:
        r = self.rnd
        local = r.choice(FIRST) + r.choice([".", "_", "+", ""]) + r.choice(LAST)
        return f"{local}{r.randint(1, 99)}@{r.choice(DOMAINS)}"

    def card(self) -> str:
        r = self.rnd
        prefix, length = r.choice([("4", 16), ("51", 16), ("37", 15), ("6011", 16), ("4", 19)])
        number = luhn_complete(prefix + self.digits(length - len(prefix) - 1))
        return r.choice([number, group(number, 4, " "), group(number, 4, "-")])

    def ssn(self) -> str:
        r = self.rnd
        area = r.choice([n for n in range(1, 900) if n != 666])
        sep = r.choice(["-", " "])
        return f"{area:03d}{sep}{r.randint(1, 99):02d}{sep}{r.randint(1, 9999):04d}"

    def phone(self) -> str:
        r = self.rnd
        area = f"{r.randint(2, 9)}{self.digits(2)}"
        exch = f"{r.randint(2, 9)}{self.digits(2)}"
        line = self.digits(4)
        return r.choice(
            [
                f"({area}) {exch}-{line}",
                f"{area}-{exch}-{line}",
                f"{area}.{exch}.{line}",
                f"+1 {area} {exch} {line}",
                f"+1{area}{exch}{line}",
                f"+44 20 {self.digits(4)} {self.digits(4)}",
                f"+49 30 {self.digits(8)}",
            ]
        )

    def iban(self) -> str:
        r = self.rnd
        country, bban = r.choice(
            [
                ("DE", self.digits(18)),
                ("GB", "WEST" + self.digits(14)),
                ("FR", self.digits(10) + "ABCDE" + self.digits(8)),
                ("NL", "ABNA" + self.digits(10)),
            ]
        )
        value = iban_complete(country, bban)
        return r.choice([value, group(value, 4, " ")])

    def ipv4(self) -> str:
        return ".".join(str(self.rnd.randint(0, 255)) for _ in range(4))

    def ipv6(self) -> str:
        r = self.rnd
        hextets = [f"{r.randint(0, 0xFFFF):x}" for _ in range(8)]
        return r.choice(
            [
                ":".join(hextets),
                f"2001:db8::{r.randint(1, 0xFFFF):x}",
                "fe80::1",
                f"::ffff:{self.ipv4()}",
            ]
        )

    def credential(self) -> tuple[str, str]:
        """(text to plant, the part that must be found)."""
        r = self.rnd
        b64 = string.ascii_letters + string.digits + "-_"
        token = "".join(r.choice(b64) for _ in range(32)) + r.choice(string.digits)
        kind = r.randrange(4)
        if kind == 0:
            return f"Bearer {token}", token
        if kind == 1:
            key = "srk_" + "".join(r.choice("0123456789abcdef") for _ in range(16))
            key += "_" + "".join(r.choice(b64) for _ in range(43))
            return key, key
        if kind == 2:
            jwt = f"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI{token[:12]}.{token}"
            return jwt, jwt
        pem = (
            "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow" + token + "\\n-----END RSA PRIVATE KEY-----"
        )
        return pem, pem

    def near_miss(self) -> str:
        """A value that looks like PII but must not be reported."""
        r = self.rnd
        body = luhn_complete("4" + self.digits(14))
        bad_card = body[:-1] + str((int(body[-1]) + r.randint(1, 9)) % 10)
        iban = iban_complete("DE", self.digits(18))
        bad_iban = iban[:2] + f"{(int(iban[2:4]) + 1) % 100:02d}" + iban[4:]
        return r.choice(
            [
                bad_card,
                group(bad_card, 4, " "),
                f"000-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"666-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"9{self.digits(2)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}",
                f"{r.randint(100, 665)}-00-{r.randint(1000, 9999)}",
                f"{r.randint(100, 665)}-{r.randint(10, 99)}-0000",
                f"20{r.randint(10, 29)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
                f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/20{r.randint(10, 29)}",
                ".".join(str(r.randint(1, 9)) for _ in range(5)),  # a version string
                f"v{self.ipv4()}",
                f"{r.randint(256, 999)}.1.1.1",
                self.digits(r.randint(20, 40)),
                f"{r.choice(FIRST)}@localhost",
                f"{r.choice(FIRST)}@",
                bad_iban,
                f"({r.randint(0, 1)}{self.digits(2)}) 555-0134",
                f"{self.digits(9)}",
                "Bearer token",
                "srk_" + "0123456789abcdef",
                "12:30:45",
                "std::vector",
                "dead::beef",
            ]
        )

    def planted_value(self) -> tuple[str, str, str]:
        """(kind, text to plant, the part that must be found)."""
        kind = self.rnd.choice(
            ["EMAIL", "CARD", "SSN", "PHONE", "IBAN", "IPV4", "IPV6", "CREDENTIAL"]
        )
        if kind == "CREDENTIAL":
            text, found = self.credential()
            return kind, text, found
        value = getattr(self, kind.lower())()
        return kind, value, value

    def filler(self, words: int) -> str:
        return " ".join(self.rnd.choice(WORDS) for _ in range(words))

    def wrap(self, value: str) -> str:
        """Put a value into a log line, a JSON payload, free text or non-ASCII text."""
        r = self.rnd
        style = r.randrange(4)
        if style == 0:
            return (
                f"2024-05-{r.randint(1, 28):02d}T12:{r.randint(10, 59)}:07Z INFO "
                f"request_id={self.digits(6)} user={value} latency_ms={r.randint(1, 900)}"
            )
        if style == 1:
            return (
                f'{{"id": {r.randint(1, 10**6)}, "contact": "{value}", "note": "{self.filler(4)}"}}'
            )
        if style == 2:
            return f"{self.filler(r.randint(3, 9)).capitalize()} {value} {self.filler(5)}."
        return f"{r.choice(NON_ASCII)} {value} {r.choice(NON_ASCII)}"

    def line(self) -> Line:
        """A line with one planted value, one near-miss or no PII at all."""
        roll = self.rnd.random()
        if roll < 0.4:
            kind, value, found = self.planted_value()
            text = self.wrap(value)
            start = text.index(value) + value.index(found)
            return Line(text, ((kind, start, start + len(found)),))
        if roll < 0.7:
            return Line(self.wrap(self.near_miss()), ())
        return Line(self.wrap(self.filler(6)) if roll < 0.85 else self.rnd.choice(NON_ASCII), ())


def lines(count: int, seed: int = SEED) -> list[Line]:
    """``count`` generated lines, the same for the same seed."""
    gen = Generator(seed)
    return [gen.line() for _ in range(count)]


def mixed_corpus(size: int = 1 << 20, seed: int = SEED) -> str:
    """About ``size`` UTF-8 bytes of generated lines joined by newlines."""
    out: list[str] = []
    total = 0
    for item in lines(size // 40 + 16, seed):
        out.append(item.text)
        total += len(item.text.encode()) + 1
        if total >= size:
            break
    return "\n".join(out)
