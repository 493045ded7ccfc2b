"""Headless Chromium for the HTML report's tests, and the checks they make on a page.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them), driven by
Selenium with nothing downloaded. Each check returns the problems it found (empty:
none), so a test can also show that a broken page is caught.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--window-size=1400,1800", "--autoplay-policy=no-user-gesture-required")


def browser_missing() -> str:
    """Why no browser test can run here ("" when one can)."""
    for path in (CHROMIUM, DRIVER):
        if not os.path.isfile(path):
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements.txt)"
    return ""


def start_browser():
    """A headless Chromium under chromedriver, its console log kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def open_page(driver, page: Path, *, settle_s: float = 10.0) -> None:
    """Load ``page`` by file:// URL and wait until every audio element given its file
    (those near the screen: the page gives the others theirs as they come near) has its
    metadata or an error (at most ``settle_s``)."""
    driver.get(Path(page).resolve().as_uri())
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        pending = driver.execute_script(
            "return [...document.querySelectorAll('audio[src]')].filter(a => a.readyState < 1 && !a.error).length")
        if pending == 0:
            return
        time.sleep(0.1)


def load_all_audio(driver, *, settle_s: float = 15.0) -> None:
    """Give every drawn audio element its file now, as scrolling to it would, and wait for
    their metadata or errors."""
    driver.execute_script("document.querySelectorAll('audio:not([src])').forEach(a => { a.src = a.dataset.src; })")
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline and driver.execute_script(
            "return [...document.querySelectorAll('audio')].filter(a => a.readyState < 1 && !a.error).length"):
        time.sleep(0.1)


def console_errors(driver) -> list[str]:
    """The console's errors since the last call (a missing file, a script error)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def audio_problems(driver) -> list[str]:
    """Every drawn audio element that did not load or reports no duration."""
    states = driver.execute_script(
        "return [...document.querySelectorAll('audio')].map(a => [a.getAttribute('src') || a.dataset.src, a.readyState,"
        " a.duration, a.error ? a.error.code : null])")
    return [f"{src}: readyState {ready}, duration {duration}, error {error}"
            for src, ready, duration, error in states
            if ready < 1 or error is not None or not duration or duration != duration]


def play_problems(driver, *, wait_s: float = 5.0) -> list[str]:
    """Every drawn audio element that does not play: each is started muted, and must
    advance its clock, then it is paused again."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1], waitMs = arguments[0] * 1000;
        const players = [...document.querySelectorAll('audio')];
        Promise.all(players.map((a) => new Promise((resolve) => {
          a.muted = true;
          const timer = setTimeout(() => resolve(a.getAttribute('src') + ': did not advance'), waitMs);
          a.addEventListener('timeupdate', () => {
            if (a.currentTime > 0) { clearTimeout(timer); a.pause(); a.currentTime = 0; resolve(null); }
          });
          a.play().catch((e) => { clearTimeout(timer); resolve(a.getAttribute('src') + ': ' + e); });
        }))).then((found) => done(found.filter((x) => x)));
    """, wait_s)


def image_problems(driver) -> list[str]:
    """Spectrogram images that did not load (lazy ones are made eager first)."""
    driver.execute_script("document.querySelectorAll('img').forEach(i => { i.loading = 'eager'; })")
    time.sleep(0.3)
    states = driver.execute_script(
        "return [...document.querySelectorAll('img')].map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
    return [f"{src}: complete {done}, width {width}" for src, done, width in states if not done or not width]


def drawn_marks(driver, signal: str) -> dict[tuple[int, str], list[tuple[str, int]]]:
    """The heard (1) and missed (0) marks drawn for ``signal``: ``{(run index, ear): [(word, mark)]}``."""
    found = driver.execute_script(
        "const body = document.querySelector(`tbody[data-signal='${arguments[0]}']`);"
        "if (!body) return null;"
        "return [...body.querySelectorAll('.ear')].map(e => [e.dataset.run, e.dataset.ear,"
        " [...e.querySelectorAll('.w')].map(w => [w.textContent, +w.dataset.heard,"
        "  getComputedStyle(w).textDecorationLine])]);", signal)
    if found is None:
        raise AssertionError(f"signal {signal} is not drawn")
    return {(int(run), ear): [(w, m) for w, m, _ in words] for run, ear, words in found}


def drawn_signals(driver) -> list[str]:
    """The signals drawn, in order."""
    return driver.execute_script(
        "return [...document.querySelectorAll('tbody.signal')].map(b => b.dataset.signal)")


def page_data(page: Path) -> dict:
    """The JSON block the page draws its rows from."""
    text = Path(page).read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="report-data">') + len(
        '<script type="application/json" id="report-data">')
    return json.loads(text[start:text.index("</script>", start)])


def keep_artefact(source: Path, name: str) -> Path:
    """Copy a test artefact (a screenshot) to ``$CLIP_TEST_ARTEFACTS`` or ``test-artefacts/``."""
    folder = Path(os.environ.get("CLIP_TEST_ARTEFACTS", Path(__file__).resolve().parents[1] / "test-artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, folder / name)
    return folder / name
