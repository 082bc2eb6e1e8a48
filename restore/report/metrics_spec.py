"""The metrics a report shows: titles, which way is better, the digits kept (one table for the page and its data)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """How the report shows one metric.

    Attributes:
        name: The key in the per-image rows (``psnr``).
        title: Column title (``PSNR dB``).
        better: ``"higher"``, ``"lower"``, or ``"one"`` (closest to 1.0 is best: the detail ratio).
        digits: Decimals kept in the page's data and shown.
    """

    name: str
    title: str
    better: str
    digits: int


#: In column order; LPIPS only when ``restore eval`` was given its weights.
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("psnr", "PSNR dB", "higher", 2),
    MetricSpec("ssim", "SSIM", "higher", 4),
    MetricSpec("swd", "SWD", "lower", 1),
    MetricSpec("detail", "detail", "one", 3),
    MetricSpec("l1", "L1 %", "lower", 3),
    MetricSpec("lpips", "LPIPS", "lower", 4),
)


def metrics_present(rows: list[dict]) -> tuple[MetricSpec, ...]:
    """The metrics of :data:`METRICS` that the per-image rows hold (LPIPS only when computed)."""
    return tuple(spec for spec in METRICS if rows and spec.name in rows[0])
