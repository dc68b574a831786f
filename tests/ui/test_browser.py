"""The Automations pages in a real browser: the demo (``python -m demo --keep``: a real Airflow on
127.0.0.1, the example automations, the story's events) with Airflow's simple auth manager letting
everyone in as admin, and headless Chromium (Debian's package, installed when missing) opening the
pages through Airflow's login redirect. Asserts on the rendered DOM (rows, links, the chart's threshold
line) and saves screenshots under ``docs/`` for the README."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.__main__ import AUTOMATIONS
from demo.debian import installed

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def chromium() -> Path:
    def find() -> Path | None:
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        return Path(found) if found else None

    return installed("chromium", find)


class Browser:
    """Headless Chromium, one invocation a page: the login redirect sets Airflow's cookie, then the page."""

    def __init__(self, binary: Path, airflow: str, profile: Path) -> None:
        self.binary, self.airflow, self.profile = binary, airflow, profile

    def _run(self, path: str, *args: str) -> str:
        url = f"{self.airflow}/auth/token/login?next={path}"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={self.profile}"]
        done = subprocess.run([str(self.binary), *flags, "--virtual-time-budget=8000", *args, url],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    def dom(self, path: str) -> str:
        return self._run(path, "--dump-dom")

    def screenshot(self, path: str, to: Path, size: str = "1280,800") -> None:
        to.unlink(missing_ok=True)
        self._run(path, f"--screenshot={to}", f"--window-size={size}")
        assert to.stat().st_size > 10_000, f"{to} is too small to show the page"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo, kept running after its story; the Airflow UI's address."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WBAUTO", "WANDB"))}
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] = "True"  # the browser logs in with no password
    proc = subprocess.Popen([sys.executable, "-m", "demo", "--keep"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=600)
            seen.append(line)
            if found := re.search(r"Airflow UI: (http://127\.0\.0\.1:\d+)", line):
                yield found.group(1)
                break
    except queue.Empty:
        pytest.fail("the demo did not come up:\n" + "".join(seen[-40:]))
    finally:
        proc.send_signal(signal.SIGTERM)  # the demo stops Airflow and the backend on SIGTERM
        proc.wait(timeout=120)


@pytest.mark.timeout(900)
def test_the_pages_render_in_a_browser_with_rows_links_and_the_threshold(demo: str, tmp_path: Path) -> None:
    browser = Browser(chromium(), demo, tmp_path / "profile")
    listing = browser.dom("/wbauto/")
    assert re.findall(r'<tr class="automation" data-dag-id="([^"]+)"', listing) == sorted(AUTOMATIONS)
    assert 'href="/wbauto/dags/loss-plateau"' in listing and 'href="/dags/loss-plateau"' in listing
    assert re.search(r'<a class="scope" href="http://127\.0\.0\.1:\d+/acme/mnist"', listing)

    history = browser.dom("/wbauto/dags/retrain-on-accuracy-drop")
    assert history.count('<tr class="event"') == 1 and "finetune-2" in history
    lines = re.findall(r'<line class="threshold" data-value="([^"]+)"', history)
    assert len(lines) == 2  # the prior level and the level it fell below
    assert float(lines[1]) == pytest.approx(float(lines[0]) * 0.95)  # decreases_by(frac=0.05)
    assert 'data-label="prior window"' in history and 'data-label="window"' in history

    DOCS.mkdir(exist_ok=True)
    browser.screenshot("/wbauto/", DOCS / "ui-automations.png", "1400,520")
    browser.screenshot("/wbauto/dags/retrain-on-accuracy-drop", DOCS / "ui-history.png", "1000,560")
    in_airflow = browser.dom("/plugin/wbauto")
    assert "/wbauto/" in in_airflow  # Airflow's UI frames the page under its own navigation
    browser.screenshot("/plugin/wbauto", DOCS / "ui-in-airflow.png", "1400,700")
