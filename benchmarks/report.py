"""Benchmark ``restore eval --report``: build time, peak memory and size on disk of the HTML report.

Sections (``--sections``, all by default):

- ``eval``: every photo of ``../shared/data/eval`` (256² centre crops, the protocol's), one
  NVIDIA irregular mask each (10–50 % holes, ``restore masks generate --for-archive``),
  restored by ``restore batch`` with each ``--methods`` entry; then one ``restore eval`` with
  all of them and ``--report``. This is the report the README's screenshot shows.
- ``scale``: archives of ``--counts`` images (default 100 and 10,000) made from the same real
  photos — random square crops (¼ to all of the shorter side) resized to 256², random
  mirror — with NVIDIA masks, restored by Telea, then ``restore eval --report``.

Every step runs as its own process through the CLI; ``restore eval`` runs under GNU
``/usr/bin/time -v`` (wall time, CPU time, peak resident memory of the process). The size is the
report folder's (``du -sk``). Inputs are built under ``--work`` and kept between runs (a
restored archive that exists is resumed, i.e. reused). With ``--browser`` each report is
then opened from disk in headless Chromium (Playwright; its own Chromium or the system's):
time until the page is ready, and every page of the list walked with every picture
scrolled into view and counted as loaded or not; ``--screenshot PNG`` saves the eval-set
report's first screen. Writes JSON (``--json``).

    python benchmarks/report.py [--sections eval,scale] [--counts 100,10000] [--methods telea,ns,csa] \
        [--set wgan:restarts=1] [--browser] [--screenshot docs/report.png]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIDE = 256


def _restore(*args: str, timed: Path | None = None) -> float:
    command = [sys.executable, "-m", "restore", "-q", *args]
    if timed is not None:
        command = ["/usr/bin/time", "-v", "-o", str(timed), *command]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def _time_file(path: Path) -> dict:
    text = path.read_text()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", text).group(1)) for kind in ("User", "System"))
    return {"peak_rss_mib": round(rss / 1024, 1), "cpu_seconds": round(cpu, 1)}


def _du_mib(path: Path) -> float:
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True).stdout
    return round(int(out.split()[0]) / 1024, 1)


def _eval_photos(dest: Path) -> Path:
    """256² centre crops of every eval photo as PNG files, one folder per set."""
    from restore.data.datasets import centre_square, list_image_files, to_rgb8
    from restore.data.images import read_image, write_image
    from restore.paths import shared_data_dir

    if dest.is_dir():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    source = shared_data_dir() / "eval"
    for path in list_image_files(source):
        out = tmp / path.relative_to(source).with_suffix(".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        write_image(out, centre_square(to_rgb8(read_image(path)), SIDE))
    tmp.rename(dest)
    return dest


def _large_archive(dest: Path, count: int, seed: int = 0) -> Path:
    """``count`` 256² crops of the real eval photos (random square crops and mirrors) as a stack archive."""
    import cv2

    from restore.data.archive import ArchiveBuilder
    from restore.data.datasets import list_image_files, to_rgb8
    from restore.data.images import read_image
    from restore.paths import shared_data_dir

    if dest.is_dir():
        return dest
    photos = [to_rgb8(read_image(p)) for p in list_image_files(shared_data_dir() / "eval")]
    rng = np.random.default_rng(seed)
    keys = [f"{i:05d}" for i in range(count)]
    with ArchiveBuilder(dest, keys=keys, layout="stack", image_shape=(SIDE, SIDE, 3), dtype=np.uint8,
                        attrs={"source_dir": "benchmarks/report.py crops of ../shared/data/eval"}) as builder:
        for i, key in enumerate(keys):
            photo = photos[i % len(photos)]
            height, width = photo.shape[:2]
            side = int(rng.integers(min(height, width) // 4, min(height, width) + 1))
            top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
            crop = photo[top : top + side, left : left + side]
            crop = cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_AREA if side > SIDE else cv2.INTER_CUBIC)
            builder.add(key, np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop))
    return dest


def _masks(archive: Path, dest: Path) -> Path:
    if not dest.is_dir():
        _restore("masks", "generate", str(dest), "--kind", "nvidia", "--ratio", "0.1-0.5", "--for-archive", str(archive), "--seed", "0")
    return dest


def _restored(archive: Path, masks: Path, method: str, dest: Path, settings: tuple[str, ...] = ()) -> tuple[Path, float]:
    extra = [arg for setting in settings for arg in ("--set", setting)]
    seconds = _restore("batch", "--input", str(archive), "--masks", str(masks), "--output", str(dest), "--method", method, *extra)
    return dest, round(seconds, 1)


def _report(preds: list[Path], target: Path, masks: Path, dest: Path) -> dict:
    timing = dest.with_name(dest.name + ".time.txt")
    args = ["eval", *[a for p in preds for a in ("--pred", str(p))], "--target", str(target), "--masks", str(masks),
            "--report", str(dest), "--overwrite"]
    seconds = _restore(*args, timed=timing)
    images = sum(1 for _ in (dest / "images").rglob("*.jpg"))
    return {"seconds": round(seconds, 1), **_time_file(timing), "size_mib": _du_mib(dest), "files": images,
            "data_js_kib": round((dest / "data.js").stat().st_size / 1024, 1), "report": str(dest)}


def browser_check(report: Path, screenshot: Path | None = None) -> dict:
    """Open the report from disk in headless Chromium; walk every page; count the pictures loaded."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(headless=True)
        except Exception:  # Playwright's own Chromium is not installed: the system's
            path = next(p for name in ("chromium", "chromium-browser", "google-chrome") if (p := shutil.which(name)))
            browser = playwright.chromium.launch(headless=True, executable_path=path)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        start = time.perf_counter()
        page.goto((report / "index.html").resolve().as_uri())
        page.wait_for_selector("body[data-ready='1']")
        ready = time.perf_counter() - start
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.evaluate("document.getElementById('metrics').scrollIntoView()")
            page.wait_for_timeout(500)
            page.screenshot(path=str(screenshot))
        page.select_option("#page-size", "200")
        loaded = total = pages = 0
        seen: set[str] = set()
        while True:
            pages += 1
            counts = page.evaluate("""async () => {
                for (const img of document.querySelectorAll('img')) {
                    img.scrollIntoView();
                    if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; setTimeout(done, 5000); });
                }
                const all = [...document.querySelectorAll('#rows img, #extremes img')];
                return [all.filter(i => i.complete && i.naturalWidth > 0).map(i => i.src), all.map(i => i.src)];
            }""")
            fresh = [src for src in counts[1] if src not in seen]
            loaded += sum(1 for src in counts[0] if src not in seen)
            total += len(fresh)
            seen.update(counts[1])
            button = page.locator("nav.pager button.next").first
            if button.is_disabled():
                break
            button.click()
        browser.close()
    return {"ready_seconds": round(ready, 2), "pages_of_200": pages, "pictures": total, "pictures_loaded": loaded, "errors": errors}


def section_eval(work: Path, methods: list[str], settings: dict[str, tuple[str, ...]] | None = None) -> dict:
    photos = _eval_photos(work / "eval-photos")
    archive = work / "eval.zarr"
    if not archive.is_dir():
        _restore("ingest", str(photos), str(archive), "--recursive")
    masks = _masks(archive, work / "eval-masks")
    preds, batch = [], {}
    for method in methods:
        pred, seconds = _restored(archive, masks, method, work / f"eval.{method}.zarr", (settings or {}).get(method, ()))
        preds.append(pred)
        batch[method] = seconds
    from restore.data.archive import open_archive

    result = {"images": len(open_archive(archive).keys), "methods": methods, "settings": settings or {}, "batch_seconds": batch,
              **_report(preds, archive, masks, work / "report-eval")}
    print(f"eval sets: {result['images']} images x {len(methods)} methods: {result['seconds']} s ({result['cpu_seconds']} s CPU), "
          f"peak RSS {result['peak_rss_mib']} MiB, {result['size_mib']} MiB on disk")
    return result


def section_scale(work: Path, counts: list[int]) -> dict:
    results = {}
    for count in counts:
        archive = _large_archive(work / f"crops-{count}.zarr", count)
        masks = _masks(archive, work / f"crops-{count}-masks")
        pred, batch_seconds = _restored(archive, masks, "telea", work / f"crops-{count}.telea.zarr")
        results[str(count)] = {"images": count, "batch_seconds": batch_seconds, **_report([pred], archive, masks, work / f"report-{count}")}
        r = results[str(count)]
        print(f"{count} images (telea): {r['seconds']} s ({r['cpu_seconds']} s CPU), peak RSS {r['peak_rss_mib']} MiB, {r['size_mib']} MiB on disk "
              f"({r['size_mib'] * 1024 / count:.1f} KiB an image), data.js {r['data_js_kib']} KiB")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sections", default="eval,scale")
    parser.add_argument("--methods", default="telea,ns,csa", help="Methods of the eval-set report.")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="METHOD:KEY=VALUE",
                        help="An inference setting for one method's restore batch in the eval section (wgan:restarts=1); repeatable.")
    parser.add_argument("--counts", default="100,10000", help="Archive sizes of the scale section.")
    parser.add_argument("--work", type=Path, default=REPO / "bench-out" / "report-work")
    parser.add_argument("--json", type=Path, default=REPO / "bench-out" / "report.json")
    parser.add_argument("--browser", action="store_true", help="Open each report in headless Chromium (needs Playwright).")
    parser.add_argument("--screenshot", type=Path, default=None, help="With --browser: save the eval-set report's first screen here.")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    result: dict = json.loads(args.json.read_text()) if args.json.is_file() else {}
    sections = args.sections.split(",")
    if "eval" in sections:
        settings: dict[str, tuple[str, ...]] = {}
        for item in args.settings:
            method, sep, setting = item.partition(":")
            if not sep or "=" not in setting:
                parser.error(f"--set: expected METHOD:KEY=VALUE, got {item!r}")
            settings[method] = (*settings.get(method, ()), setting)
        result["eval"] = section_eval(args.work, args.methods.split(","), settings)
        if args.browser:
            result["eval"]["browser"] = browser_check(Path(result["eval"]["report"]), args.screenshot)
            print(f"eval sets in Chromium: {result['eval']['browser']}")
    if "scale" in sections:
        result.setdefault("scale", {}).update(section_scale(args.work, [int(c) for c in args.counts.split(",")]))
        if args.browser:
            for count in args.counts.split(","):
                result["scale"][count]["browser"] = browser_check(Path(result["scale"][count]["report"]))
                print(f"{count} images in Chromium: {result['scale'][count]['browser']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
