"""Python side of the Firefox driver: runs tests/firefox/driver.mjs (npm puppeteer-core driving Debian's
firefox-esr with the extension installed) and returns what it saw. See driver.mjs for the steps.

    from firefox.driver import firefox_available, run_scenarios
    results = run_scenarios([{"settings": {...}, "steps": [{"goto": url}, {"upload": "#js-input", "files": [path]}]}])
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DRIVER = Path(__file__).resolve().parent / "driver.mjs"
FIREFOX = "/usr/bin/firefox-esr"
EXTENSION_DIR = ROOT / "extension"
EXTENSION_ORIGIN = "moz-extension://2f8f9a52-5e2c-4a55-9d62-6c1f0c9e7a11"  # the UUID driver.mjs fixes


def firefox_available() -> bool:
    return (os.access(FIREFOX, os.X_OK) and shutil.which("node") is not None
            and (ROOT / "node_modules" / "puppeteer-core").is_dir())


def xvfb_available() -> bool:
    return shutil.which("xvfb-run") is not None


def run_scenarios(scenarios: list[dict], timeout: float = 120.0, extension: Path | None = EXTENSION_DIR,
                  permanent: bool = False, prefs: dict | None = None, launcher: tuple[str, ...] = (),
                  window: bool = False) -> list[list]:
    """Runs the scenarios in one Firefox, in order; one list of step results per scenario.
    A step that failed answers {"error": ...} and ends its scenario. permanent, prefs: see driver.mjs;
    extension None: installs nothing (a policy does); launcher: a command that runs the driver (its args follow);
    window: a real (not headless) Firefox window on a fresh Xvfb display (xvfb-run), e.g. for an image clipboard."""
    job = {"extension": str(extension) if extension else "", "timeoutMs": int(timeout * 1000), "scenarios": scenarios,
           "permanent": permanent, "prefs": prefs or {}, "headless": not window}
    if window:
        launcher = ("xvfb-run", "--auto-servernum", "--server-args=-screen 0 1280x1024x24", *launcher)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as job_file:
        json.dump(job, job_file)
        job_file.flush()
        done = subprocess.run([*launcher, "node", str(DRIVER), job_file.name], capture_output=True, text=True,
                              cwd=ROOT, timeout=timeout + 30)
    try:
        answer = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"firefox driver gave no answer (exit {done.returncode}): {done.stderr[-2000:]}")
    if not answer.get("ok"):
        raise RuntimeError(f"firefox driver failed: {answer.get('error')}\n{done.stderr[-2000:]}")
    return answer["results"]
