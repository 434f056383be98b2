"""report.html and matrix.html as a person sees them: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) opens the files from disk, driven through selenium (a dev dependency; no browser download).

Two real black-box runs against one reference server address (clean, then with server faults) give a report with
failures, a WARN, a shared root cause and raw SSE bytes, and a matrix with regressions. With
``CONFORMANCE_SCREENSHOTS=DIR`` the screenshots are also saved there (the README's docs/img/*.png come from here).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from conformance import compare
from conformance.report_html import render_html
from gateway_spec import load_profile

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/lib/chromium/chromedriver"
                                                if Path("/usr/lib/chromium/chromedriver").is_file() else None)
NO_BROWSER = "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)"
if not (CHROMIUM and CHROMEDRIVER) and os.environ.get("CI"):
    raise RuntimeError(f"CI must run the browser tests: {NO_BROWSER}")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=NO_BROWSER)]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium (dev dependency) drives the browser")
By = pytest.importorskip("selenium.webdriver.common.by").By

FAULTS = ("SSE-002", "CHAT-001", "CHAT-STREAM-002", "AUTH-008")
SELECTION = ("AUTH-*", "CHAT-*", "SSE-*")  # --gw-requirement globs: these areas only, and the report lists no others
FAIL_BADGE = (0xFD, 0xE2, 0xE1)  # .v-FAIL background
REGRESSION_MARK = (0xA3, 0x19, 0x1B)  # .mark.regressed background


def _serve(profile: str, port: int, faults=()):
    from reference_server import ServerConfig, create_app

    server = make_server("127.0.0.1", port, create_app(ServerConfig.for_profile(profile, faults=faults)),
                         threaded=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def _run_suite(url: str, report_dir: Path) -> None:
    key = load_profile("openai").test_key
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.suite", "--gw-profile", "openai", "--target-url",
               url, "--gw-api-key", key, "--gw-report-dir", str(report_dir), "-q", "-p", "no:cacheprovider"]
    for glob in SELECTION:
        command += ["--gw-requirement", glob]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert (report_dir / "results.json").is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A clean run and a faulty run of the same target (one address), and their matrix."""
    root = tmp_path_factory.mktemp("browser")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    for name, faults in (("clean", ()), ("faulty", FAULTS)):
        server = _serve("openai", port, faults)
        try:
            _run_suite(url, root / name)
        finally:
            server.shutdown()
            server.server_close()
    compare.compare([root / "clean", root / "faulty"], root / "matrix")
    return {"clean": root / "clean", "faulty": root / "faulty", "matrix": root / "matrix"}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,1400", "--hide-scrollbars"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _open(browser, path: Path):
    browser.get(path.resolve().as_uri())
    return browser


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_report_shows_the_counts_of_the_run(runs, browser):
    data = _results(runs["faulty"])
    page = _open(browser, runs["faulty"] / "report.html")
    counts = {v: 0 for v in ("FAIL", "WARN", "PASS")}
    for req in data["requirements"].values():
        if req["verdict"] in counts:
            counts[req["verdict"]] += 1
    assert counts["FAIL"] >= 3 and counts["WARN"] >= 1
    for verdict, n in counts.items():
        assert page.find_element(By.ID, f"count-{verdict}").text == str(n)
    header = page.find_element(By.CSS_SELECTOR, "dl.run").text
    assert data["run"]["target"] in header and "openai" in header and "requests" in header
    assert "SSE-002, CHAT-001" not in header  # faults live on the server: a black-box run names none


def test_a_failure_shows_its_requirement_and_expected_beside_received(runs, browser):
    data = _results(runs["faulty"])
    case = next(c for c in data["cases"] if c["id"].endswith("test_answers_200_json"))
    violation = next(v for v in case["violations"] if v["requirement"] == "CHAT-001")
    page = _open(browser, runs["faulty"] / "report.html")
    finding = page.find_element(By.ID, "finding-CHAT-001")
    assert finding.is_displayed()
    assert finding.find_element(By.CSS_SELECTOR, "blockquote").text == data["requirements"]["CHAT-001"]["text"]
    expected = finding.find_element(By.CSS_SELECTOR, ".exp pre")
    received = finding.find_element(By.CSS_SELECTOR, ".rec pre")
    assert (expected.text, received.text) == (violation["expected"].strip(), violation["received"].strip())
    assert expected.location["y"] == received.location["y"] and expected.location["x"] < received.location["x"]


def test_a_folded_transcript_opens_on_click(runs, browser):
    page = _open(browser, runs["faulty"] / "report.html")
    group = page.find_element(By.ID, "finding-CHAT-001").find_element(By.XPATH, "./ancestor::section")
    details = group.find_element(By.CSS_SELECTOR, "details.transcript")
    body = details.find_element(By.CSS_SELECTOR, "pre")
    assert not body.is_displayed()
    details.find_element(By.CSS_SELECTOR, "summary").click()
    assert body.is_displayed() and "> POST http://127.0.0.1:" in body.text and "[REDACTED]" in body.text
    assert load_profile("openai").test_key not in page.page_source


def test_raw_sse_bytes_show_cr_lf_and_arrival_times(runs, browser):
    page = _open(browser, runs["faulty"] / "report.html")
    group = page.find_element(By.ID, "finding-SSE-002").find_element(By.XPATH, "./ancestor::section")
    details = group.find_element(By.CSS_SELECTOR, "details.sse")
    details.find_element(By.CSS_SELECTOR, "summary").click()
    table = details.find_element(By.CSS_SELECTOR, "table.sse")
    assert table.is_displayed()
    assert "data: {" in table.text and "\\n" in table.text and " ms" in table.text
    assert "[DONE]" not in table.text  # the fault: the stream ends without it


def test_requirements_sharing_an_exchange_form_one_group(runs, browser):
    page = _open(browser, runs["faulty"] / "report.html")
    group = page.find_element(By.ID, "finding-CHAT-STREAM-002").find_element(By.XPATH, "./ancestor::section")
    ids = {el.get_attribute("id") for el in group.find_elements(By.CSS_SELECTOR, ".finding")}
    assert {"finding-CHAT-STREAM-002", "finding-CHAT-STREAM-017"} <= ids
    assert "One root cause" in group.find_element(By.CSS_SELECTOR, ".cause").text


def test_filters_by_outcome_and_area(runs, browser):
    data = _results(runs["faulty"])
    page = _open(browser, runs["faulty"] / "report.html")
    total = len(data["requirements"])
    passing = sum(r["verdict"] == "PASS" for r in data["requirements"].values())
    assert page.find_element(By.ID, "shown").text == str(total)
    page.find_element(By.CSS_SELECTOR, 'input[name="outcome"][value="PASS"]').click()
    assert page.find_element(By.ID, "shown").text == str(total - passing)
    a_pass = next(rid for rid, r in data["requirements"].items() if r["verdict"] == "PASS")
    assert not page.find_element(By.ID, f"req-{a_pass}").is_displayed()
    assert page.find_element(By.ID, "req-CHAT-001").is_displayed()
    from selenium.webdriver.support.ui import Select

    Select(page.find_element(By.ID, "filter-area")).select_by_value("auth")
    assert not page.find_element(By.ID, "finding-CHAT-001").is_displayed()
    assert page.find_element(By.ID, "finding-AUTH-008").is_displayed()
    assert page.find_element(By.ID, "shown").text == str(
        sum(r["verdict"] != "PASS" and r["area"] == "auth" for r in data["requirements"].values()))


def test_matrix_shows_regressions_linking_to_the_report(runs, browser):
    page = _open(browser, runs["matrix"] / "matrix.html")
    row = page.find_element(By.ID, "row-CHAT-001")
    cells = row.find_elements(By.CSS_SELECTOR, "td")
    assert [c.text for c in cells] == ["PASS", "FAIL regressed"]
    assert page.find_element(By.ID, "row-AUTH-008").find_elements(By.CSS_SELECTOR, "td")[1].text == "WARN regressed"
    assert int(page.find_element(By.ID, "regressions").text) >= 4
    page.find_element(By.ID, "only-diff").click()
    assert not page.find_element(By.ID, "row-AUTH-001").is_displayed() and row.is_displayed()
    cells[1].find_element(By.CSS_SELECTOR, "a").click()
    assert page.current_url.endswith("/faulty/report.html#req-CHAT-001")
    assert page.find_element(By.ID, "req-CHAT-001").is_displayed()


def test_a_hostile_target_cannot_inject_markup(tmp_path, browser):
    hostile = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'
    results = {"run": {"target": "http://gw/" + hostile, "profile": "p", "label": hostile}, "summary": {},
               "requirements": {"T-001": {"level": "MUST", "area": hostile, "feature": None, "text": hostile,
                                          "verdict": "FAIL", "untestable": None,
                                          "cases": [{"id": hostile, "verdict": "FAIL"}]}},
               "cases": [{"id": hostile, "outcome": "FAIL", "message": hostile, "request_ids": [],
                          "violations": [{"requirement": "T-001", "expected": hostile, "received": hostile,
                                          "note": hostile, "untestable": False}],
                          "streams": [{"request": hostile, "status": 200, "bytes": 1,
                                       "chunks": [{"ms": 1.0, "text": hostile + "\r\n"}]}]}]}
    path = tmp_path / "report.html"
    path.write_text(render_html(results, {hostile: hostile}))
    page = _open(browser, path)
    assert page.title != "pwned"
    assert page.execute_script("return [document.images.length, document.scripts.length]") == [0, 1]  # its own
    assert hostile in page.find_element(By.CSS_SELECTOR, "#finding-T-001 .rec pre").text


def _save(browser, name: str, tmp_path: Path) -> Path:
    """Screenshot, made small (a 64-colour palette); also into $CONFORMANCE_SCREENSHOTS when set."""
    from PIL import Image

    raw = tmp_path / f"{name}-raw.png"
    browser.save_screenshot(str(raw))
    small = tmp_path / f"{name}.png"
    Image.open(raw).convert("RGB").quantize(colors=64).save(small, optimize=True)
    target = os.environ.get("CONFORMANCE_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(small, Path(target) / f"{name}.png")
    return raw


def _has_colour(png: Path, rgb: tuple[int, int, int], at_least: int) -> bool:
    from PIL import Image

    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 24)
    return sum(n for n, colour in colours if colour == rgb) >= at_least


def test_screenshots_of_report_and_matrix(runs, browser, tmp_path):
    """The screenshots the README shows; what is checked is what stays stable: size, the FAIL badges and the
    regression marks drawn in their colours (not pixels of text, which move with fonts)."""
    pytest.importorskip("PIL", reason="Pillow (dev dependency) reads the screenshots")
    page = _open(browser, runs["faulty"] / "report.html")
    page.find_element(By.CSS_SELECTOR, 'input[name="outcome"][value="PASS"]').click()  # findings in view
    report = _save(page, "report", tmp_path)
    browser.set_window_size(1280, 760)
    try:
        matrix = _save(_open(browser, runs["matrix"] / "matrix.html"), "matrix", tmp_path)
    finally:
        browser.set_window_size(1280, 1400)
    from PIL import Image

    assert Image.open(report).size[0] >= 1200
    assert _has_colour(report, FAIL_BADGE, 200)
    assert _has_colour(matrix, REGRESSION_MARK, 200)
