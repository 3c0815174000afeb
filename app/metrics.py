"""Prometheus text metrics without a dependency: counters, gauges and histograms in one registry.

The process has one :data:`REGISTRY`; modules create their metrics at import and ``GET /metrics``
renders them. Labels are passed as keyword arguments: ``CALLS.inc(method="GET", status="200")``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable


def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    escaped = (
        (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in labels
    )
    return "{" + ",".join(f'{k}="{v}"' for k, v in escaped) + "}"


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str) -> None:
        self.name = name
        self.help = help_text
        self._lock = threading.Lock()
        self._values: dict[tuple[tuple[str, str], ...], float] = {}

    @staticmethod
    def _key(labels: dict[str, object]) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, str(v)) for k, v in labels.items()))

    def value(self, **labels: object) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield f"{self.name}{_label_text(labels)} {value:g}"

    def render(self) -> str:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines.extend(self.samples())
        return "\n".join(lines)


class Counter(_Metric):
    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Metric):
    kind = "gauge"

    def set(self, value: float, **labels: object) -> None:
        with self._lock:
            self._values[self._key(labels)] = float(value)

    def inc(self, amount: float = 1.0, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: object) -> None:
        self.inc(-amount, **labels)


class Histogram(_Metric):
    kind = "histogram"
    DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._series: dict[tuple[tuple[str, str], ...], list[float]] = {}

    def observe(self, value: float, **labels: object) -> None:
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, [0.0] * (len(self.buckets) + 2))
            series[bisect.bisect_left(self.buckets, value)] += 1
            series[-1] += value

    def count(self, **labels: object) -> float:
        series = self._series.get(self._key(labels))
        return sum(series[:-1]) if series else 0.0

    def samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        for labels, series in items:
            running = 0.0
            for bound, n in zip(self.buckets, series, strict=False):
                running += n
                le = _label_text(labels + (("le", f"{bound:g}"),))
                yield f"{self.name}_bucket{le} {running:g}"
            running += series[len(self.buckets)]
            yield f"{self.name}_bucket{_label_text(labels + (('le', '+Inf'),))} {running:g}"
            yield f"{self.name}_sum{_label_text(labels)} {series[-1]:g}"
            yield f"{self.name}_count{_label_text(labels)} {running:g}"


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _get(self, cls: type[_Metric], name: str, help_text: str, **kw: object) -> _Metric:
        metric = self._metrics.get(name)
        if metric is None:
            metric = cls(name, help_text, **kw)  # type: ignore[arg-type]
            self._metrics[name] = metric
        return metric

    def counter(self, name: str, help_text: str) -> Counter:
        return self._get(Counter, name, help_text)  # type: ignore[return-value]

    def gauge(self, name: str, help_text: str) -> Gauge:
        return self._get(Gauge, name, help_text)  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, **kw: object) -> Histogram:
        return self._get(Histogram, name, help_text, **kw)  # type: ignore[return-value]

    def render(self) -> str:
        return "\n".join(m.render() for _, m in sorted(self._metrics.items())) + "\n"


REGISTRY = Registry()
