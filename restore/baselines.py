"""The classical baselines every quality table scores, and which of them each margin is taken over.

"The better OpenCV method" a learned method is judged against (DESIGN §10) is, per mask set:

- for PSNR and SSIM, the best of Telea, Navier–Stokes and FSR (the strongest classical fidelity);
- for SWD and the detail ratio, the best of Telea and Navier–Stokes;

and shift-map, which copies real texture (the lowest classical SWD at a low PSNR), is reported
beside it as the realism anchor a learned method should approach. Used by
``benchmarks/quality.py`` and the model card (:mod:`restore.training.model_card`); imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping

#: The baselines scored in the same run as any learned method, in table order.
BASELINES: tuple[str, ...] = ("telea", "ns", "fsr", "shiftmap")
#: The baselines whose best PSNR and SSIM a learned method's margins are taken over.
FIDELITY_BASELINES: tuple[str, ...] = ("telea", "ns", "fsr")
#: The baselines whose best SWD and detail ratio a learned method's margins are taken over.
REALISM_BASELINES: tuple[str, ...] = ("telea", "ns")
#: Reported beside the margins: the classical method with real texture.
REALISM_ANCHOR = "shiftmap"

Metrics = Mapping[str, float | None]


def best_baseline(results: Mapping[str, Metrics]) -> dict[str, float]:
    """The better OpenCV method's figures for one mask set, over the baselines ``results`` holds.

    Args:
        results: metrics per label for one mask set (``{"telea": {"psnr": …, "swd": …}, …}``).

    Returns:
        ``psnr`` and ``ssim`` (highest over :data:`FIDELITY_BASELINES`), ``swd`` (lowest) and
        ``detail`` (highest over :data:`REALISM_BASELINES`); a key is left out when none of its
        baselines was scored or measured it.
    """
    best: dict[str, float] = {}
    for keys, names, pick in ((("psnr", "ssim"), FIDELITY_BASELINES, max), (("swd",), REALISM_BASELINES, min),
                              (("detail",), REALISM_BASELINES, max)):
        for key in keys:
            values = [results[name][key] for name in names if name in results and results[name].get(key) is not None]
            if values:
                best[key] = float(pick(values))
    return best


def margins(ours: Metrics, results: Mapping[str, Metrics]) -> dict[str, float]:
    """A method's margins over the better OpenCV method for one mask set, and its SWD beside shift-map's.

    Returns:
        ``psnr`` and ``ssim`` (differences), ``swd`` (a ratio: below 1 is better), ``detail``
        (difference) against :func:`best_baseline`, and ``swd_anchor`` (SWD as a ratio of
        shift-map's); a key is left out when either side lacks the figure.
    """
    best = best_baseline(results)
    out: dict[str, float] = {}
    for key in ("psnr", "ssim", "detail"):
        if key in best and ours.get(key) is not None:
            out[key] = float(ours[key]) - best[key]
    if "swd" in best and ours.get("swd") is not None:
        out["swd"] = float(ours["swd"]) / best["swd"]
    anchor = results.get(REALISM_ANCHOR, {})
    if ours.get("swd") is not None and anchor.get("swd"):
        out["swd_anchor"] = float(ours["swd"]) / float(anchor["swd"])
    return out
