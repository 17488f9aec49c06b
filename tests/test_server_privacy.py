"""Nothing phones home and nothing chatters: the command and the server, run with a fresh home folder, leave
no telemetry there, and the server's start-up shows no messages of the ML libraries."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from photos import astronaut, encode
from server_process import start_server

# mediapipe imports matplotlib, which keeps a font list in its cache folder: not about the user or machine.
EXPECTED = ("matplotlib",)
LIBRARY_NOISE = ("TensorFlow Lite", "absl::", "inference_feedback_manager", "W0000")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("privacy") / "home"


@pytest.fixture(scope="module")
def env(home) -> dict:
    """This process's environment with a new, empty home and XDG folders (and no telemetry switch of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ORT_"))}
    env["HOME"] = str(home)
    for name, folder in (("CACHE", ".cache"), ("CONFIG", ".config"), ("DATA", ".local/share"),
                         ("STATE", ".local/state")):
        env[f"XDG_{name}_HOME"] = str(home / folder)
    home.mkdir()
    return env


@pytest.fixture(scope="module")
def server(home, env):
    server = start_server(home.parent / "config", env=env)
    yield server
    server.stop()


def written_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and not any(part in EXPECTED for part in p.parts))


def test_command_and_server_write_no_telemetry(home, env, server, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode(astronaut(), "PNG"))
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(photo), "-o", str(tmp_path / "out.png")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert server.request("POST", "/v1/protect?mode=people", body=photo.read_bytes()).status == 200
    assert written_under(home) == [], "the command or the server wrote into the home folder"
    assert not list(home.rglob("*onnxruntime*")) and not list(home.rglob("Microsoft"))


def test_server_start_up_shows_no_library_messages(server):
    assert server.request("POST", "/v1/protect?mode=people", body=encode(astronaut(), "PNG")).status == 200
    output = server.output_tail(400)
    assert "listening on" in output
    assert not [noise for noise in LIBRARY_NOISE if noise in output], output
