"""Prometheus text scraped into samples, and the arithmetic the bench does on them.

A :class:`Samples` is one scrape: ``{(name, labels): value}``. Figures are deltas of
counters between two scrapes (:meth:`Samples.minus`), summed or grouped by a label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Samples:
    values: Mapping[tuple[str, Labels], float]

    @classmethod
    def parse(cls, text: str) -> Samples:
        values: dict[tuple[str, Labels], float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return cls(values)

    def minus(self, earlier: Samples) -> Samples:
        """Counter increases since ``earlier`` (a series absent then counts from zero)."""
        return Samples({key: value - earlier.values.get(key, 0.0) for key, value in self.values.items()})

    def total(self, name: str, where: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
        return sum(value for (n, labels), value in self.values.items() if n == name and where(dict(labels)))

    def by_label(
        self, name: str, label: str, where: Callable[[dict[str, str]], bool] = lambda _: True
    ) -> dict[str, float]:
        grouped: dict[str, float] = defaultdict(float)
        for (n, labels), value in self.values.items():
            as_dict = dict(labels)
            if n == name and where(as_dict):
                grouped[as_dict.get(label, "")] += value
        return dict(sorted(grouped.items()))
