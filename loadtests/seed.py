"""Seed a running Strongroom for load tests: a collection and realistic records, no two alike.

    python loadtests/seed.py --host http://127.0.0.1:8080 --key srk_... --records 2000

Writes ``loadtests/state.json`` (record URLs, subject ids and searchable emails) for the
Locust scenarios to draw from.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
from pathlib import Path
from typing import Any

import httpx

COLLECTION = {
    "fields": {
        "email": {"type": "email", "searchable": True},
        "card": {"type": "card"},
        "ssn": {"type": "ssn"},
        "phone": {"type": "phone", "searchable": True},
        "iban": {"type": "iban"},
        "name": {"type": "name", "required": True},
        "birthday": {"type": "date", "mask": "redact"},
        "notes": {"type": "text", "sensitive": True, "mask": "full"},
        "plan": {"type": "text", "sensitive": False, "searchable": True},
        "score": {"type": "number", "sensitive": False},
        "vip": {"type": "boolean", "sensitive": False},
    }
}

FIRST = [
    "Ada",
    "Grace",
    "Linus",
    "Zoë",
    "Björn",
    "Chidi",
    "Mei",
    "Ana",
    "José",
    "Priya",
    "Omar",
    "Yuki",
    "Fatima",
    "Liam",
    "Noor",
    "Sven",
    "Aroha",
    "Kofi",
    "Elif",
    "Mateo",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Okafor",
    "Müller",
    "García",
    "Nakamura",
    "Singh",
    "Haddad",
    "Kowalski",
    "Ivanova",
    "Dubois",
    "O'Neil",
    "Rossi",
    "Tanaka",
    "Mensah",
    "Larsen",
]
PLANS = ["free", "basic", "gold", "platinum", "enterprise"]


def luhn_complete(prefix: str) -> str:
    digits = [int(d) for d in prefix]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix + str((10 - total % 10) % 10)


def iban_de(rng: random.Random) -> str:
    bban = "".join(str(rng.randrange(10)) for _ in range(18))
    numeric = int(bban + "131400")  # D=13 E=14 then 00
    check = 98 - numeric % 97
    return f"DE{check:02d}{bban}"


def person(n: int, rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    area = rng.choice([x for x in range(1, 900) if x != 666])
    return {
        "email": f"{first.lower()}.{last.lower().replace(chr(39), '')}{n}@example.com",
        "card": luhn_complete("4" + "".join(str(rng.randrange(10)) for _ in range(14))),
        "ssn": f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}",
        "phone": f"+1 {rng.randrange(200, 1000)} {rng.randrange(200, 1000)} "
        f"{rng.randrange(10000):04d}",
        "iban": iban_de(rng),
        "name": f"{first} {last}",
        "birthday": f"{rng.randrange(1940, 2006)}-{rng.randrange(1, 13):02d}-"
        f"{rng.randrange(1, 29):02d}",
        "notes": f"customer since {rng.randrange(2000, 2026)}, ticket #{n * 7919 % 100000}",
        "plan": rng.choice(PLANS),
        "score": rng.randrange(0, 1000),
        "vip": rng.random() < 0.1,
    }


async def seed(host: str, key: str, records: int, collection: str) -> dict[str, Any]:
    rng = random.Random(20261126)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(
        base_url=host, headers=headers, limits=limits, timeout=30
    ) as client:
        response = await client.put(f"/v1/collections/{collection}", json=COLLECTION)
        if response.status_code not in (200, 201):
            raise SystemExit(
                f"cannot create the collection: {response.status_code} {response.text}"
            )
        semaphore = asyncio.Semaphore(32)
        state: list[dict[str, str]] = []

        async def one(n: int) -> None:
            data = person(n, rng)
            subject = f"cust-{n:07d}"
            async with semaphore:
                created = await client.post(
                    f"/v1/collections/{collection}/records",
                    json={"subject_id": subject, "data": data},
                )
            if created.status_code != 201:
                raise SystemExit(f"seeding failed: {created.status_code} {created.text}")
            state.append(
                {"url": created.headers["location"], "subject": subject, "email": data["email"]}
            )

        await asyncio.gather(*(one(n) for n in range(records)))
    return {"collection": collection, "records": state}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="http://127.0.0.1:8080")
    parser.add_argument("--key", required=True, help="an API key with the admin scope")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--collection", default="customers")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("state.json"))
    args = parser.parse_args()
    state = asyncio.run(seed(args.host, args.key, args.records, args.collection))
    args.out.write_text(json.dumps(state))
    print(f"seeded {len(state['records'])} records into {args.collection}; state in {args.out}")


if __name__ == "__main__":
    main()
