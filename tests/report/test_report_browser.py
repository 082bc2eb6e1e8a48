"""The report as a person sees it: opened from disk in headless Chromium (Playwright).

Needs the ``browser`` extra (``pip install -e .[browser]``) and a Chromium: Playwright's own
(``python -m playwright install chromium``) or the system's (``chromium``, e.g. Debian's
``apt-get install chromium``). Skipped, with the reason, where either is missing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import read_data, run_eval

pytestmark = pytest.mark.browser

#: System Chromium builds Playwright can drive when its own download is absent.
SYSTEM_CHROMIUM = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright (pip install -e .[browser])")
    with sync_api.sync_playwright() as playwright:
        try:
            instance = playwright.chromium.launch(headless=True)
        except Exception as own_error:  # Playwright's Chromium not downloaded: try the system's
            path = next((found for name in SYSTEM_CHROMIUM if (found := shutil.which(name))), None)
            if path is None:
                pytest.skip(f"no headless Chromium: Playwright's is not installed ({str(own_error).splitlines()[0]}) "
                            f"and none of {', '.join(SYSTEM_CHROMIUM)} is on PATH")
            instance = playwright.chromium.launch(headless=True, executable_path=path)
        yield instance
        instance.close()


@pytest.fixture()
def report(make_inputs, tmp_path: Path) -> dict:
    inputs = make_inputs(count=60, height=24, width=32)
    out = tmp_path / "report"
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["ns"], "--target", inputs["in"], "--masks", inputs["masks"], "--report", out)
    assert result.exit_code == 0, result.output
    return {"dir": out, "metrics": json.loads((out / "metrics.json").read_text()), "data": read_data(out)}


def _open(browser, folder: Path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: problems.append(f"request {request.url}") if not request.url.startswith("file://") else None)
    page.goto((folder / "index.html").as_uri())
    page.wait_for_selector("body[data-ready='1']")
    return page, problems


def _all_pictures_loaded(page) -> tuple[int, int]:
    """Scroll every picture into view (they load lazily) and count those loaded, of all."""
    page.evaluate("""async () => {
        for (const img of document.querySelectorAll('img')) {
            img.scrollIntoView();
            if (!img.complete) await new Promise(done => { img.onload = img.onerror = done; setTimeout(done, 3000); });
        }
    }""")
    return page.evaluate("""() => {
        const all = [...document.querySelectorAll('img')];
        return [all.filter(img => img.complete && img.naturalWidth > 0).length, all.length];
    }""")


def _keys(page, where: str = "#rows") -> list[str]:
    return page.eval_on_selector_all(f"{where} article.row .key", "nodes => nodes.map(n => n.textContent)")


def test_a_person_sees_the_table_the_pictures_and_can_sort(browser, report: dict) -> None:
    page, problems = _open(browser, report["dir"])
    runs = report["metrics"]["runs"]
    # the table: a row per run per bucket, the overall PSNR as in metrics.json
    assert page.locator("#metrics-table tbody tr").count() == 2 * (len(runs["telea"]["buckets"]) + 1)
    cell = page.locator('#metrics-table tbody[data-bucket="all"] tr[data-label="ns"] td[data-metric="psnr"]')
    assert cell.inner_text() == f"{runs['ns']['overall']['psnr']:.2f}"
    # worst and best per method at the top: telea's worst image by PSNR first
    keys, psnr = report["data"]["keys"], [report["data"]["values"][run]["psnr"] for run in (0, 1)]
    worst = page.locator('.extreme-group[data-label="telea"][data-kind="worst"] article.row .key').first
    assert worst.inner_text() == keys[min(range(60), key=lambda i: (psnr[0][i], i))]
    # the first page: 50 rows of masked input | telea | ns | original, every picture loaded
    assert len(_keys(page)) == 50
    assert page.locator("#rows article.row").first.locator("figure").count() == 4
    loaded, total = _all_pictures_loaded(page)
    assert loaded == total and total == (50 + 2 * 2 * 3) * 4 * 2  # thumbnails and outlines, list and extremes
    # sorting: ns's PSNR (as the page shows it, to 2 decimals; ties in archive order), worst first, then best first
    page.select_option("#sort", "metric:1:psnr")
    assert _keys(page) == [keys[i] for i in sorted(range(60), key=lambda i: (psnr[1][i], i))][:50]
    page.select_option("#order", "1")
    assert _keys(page) == [keys[i] for i in sorted(range(60), key=lambda i: (-psnr[1][i], i))][:50]
    # the gap between the two methods: where telea is furthest behind ns first
    page.select_option("#sort", "gap:0:1:psnr")
    assert _keys(page) == [keys[i] for i in sorted(range(60), key=lambda i: (psnr[0][i] - psnr[1][i], i))][:50]
    # the second page
    page.locator("nav.pager button.next").first.click()
    assert len(_keys(page)) == 10 and "page 2 of 2" in page.locator("nav.pager .where").first.inner_text()
    loaded, total = _all_pictures_loaded(page)
    assert loaded == total
    # hole outlines toggle
    outline = page.locator("#rows img.holes").first
    assert outline.is_visible()
    page.uncheck("#outlines")
    assert not outline.is_visible()
    page.check("#outlines")
    assert outline.is_visible()
    assert problems == []
    page.close()


def test_a_report_without_originals_shows_the_restorations(browser, make_inputs, tmp_path: Path) -> None:
    inputs = make_inputs(count=3, name="real")
    out = tmp_path / "real-report"
    result = run_eval("--pred", inputs["telea"], "--pred", inputs["ns"], "--masks", inputs["masks"], "--report", out)
    assert result.exit_code == 0, result.output
    page, problems = _open(browser, out)
    assert page.locator("#metrics-table").count() == 0 and page.locator("#extremes").is_hidden()
    assert page.locator("#rows article.row").count() == 3
    titles = page.locator("#rows article.row").first.locator(".col-title").all_inner_texts()
    assert titles == ["masked input", "telea", "ns"]
    loaded, total = _all_pictures_loaded(page)
    assert loaded == total == 3 * 3 * 2
    assert problems == []
    page.close()
