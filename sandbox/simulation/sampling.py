"""Helpers for drawing from the company's random stream: weighted choices and values kept in range."""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate


class Weighted:
    """Draws items in proportion to their weights (faster than ``random.choices`` for one item)."""

    __slots__ = ("items", "cumulative", "total")

    def __init__(self, pairs: Iterable[tuple[object, float]]):
        pairs = list(pairs)
        self.items = [item for item, _ in pairs]
        self.cumulative = list(accumulate(weight for _, weight in pairs))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random):
        return self.items[bisect_right(self.cumulative, rng.random() * self.total)]


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    return low if value < low else high if value > high else value
