"""Reading PostgreSQL's query plans in tests."""

from __future__ import annotations

import json
from typing import Any


def plan_nodes(explained: str) -> list[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` answer, the top one first."""

    def walk(node: dict[str, Any]) -> list[dict[str, Any]]:
        return [node, *(below for child in node.get("Plans", []) for below in walk(child))]

    return walk(json.loads(explained)[0]["Plan"])
