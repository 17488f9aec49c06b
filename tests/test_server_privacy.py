"""Nothing phones home: the command and the server, run with a fresh home folder, leave no telemetry there."""

import os
import subprocess
import sys
from pathlib import Path

from photos import astronaut, encode
from server_process import start_server

# mediapipe imports matplotlib, which keeps a font list in its cache folder: not about the user or machine.
EXPECTED = ("matplotlib",)


def fresh_home(tmp_path: Path) -> dict:
    """This process's environment with a new, empty home and XDG folders (and no telemetry switch of ours)."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "ORT_"))}
    env["HOME"] = str(home)
    for name, folder in (("CACHE", ".cache"), ("CONFIG", ".config"), ("DATA", ".local/share"),
                         ("STATE", ".local/state")):
        env[f"XDG_{name}_HOME"] = str(home / folder)
    home.mkdir()
    return env


def written_under(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*")
                  if p.is_file() and not any(part in EXPECTED for part in p.parts))


def test_command_and_server_write_no_telemetry(tmp_path):
    env = fresh_home(tmp_path)
    home = Path(env["HOME"])
    photo = tmp_path / "photo.png"
    photo.write_bytes(encode(astronaut(), "PNG"))
    run = subprocess.run([sys.executable, "-m", "shield_server", "redact", str(photo), "-o", str(tmp_path / "out.png")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    assert written_under(home) == [], "the command wrote into the home folder"

    server = start_server(tmp_path / "config", env=env)
    try:
        assert server.request("POST", "/v1/protect?mode=people", body=photo.read_bytes()).status == 200
    finally:
        server.stop()
    assert written_under(home) == [], "the server wrote into the home folder"
    assert not list(home.rglob("*onnxruntime*")) and not list(home.rglob("Microsoft"))
