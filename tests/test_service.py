"""`shield service`: the login service's files, and that the command they register really starts the server."""

import configparser
import os
import plistlib
import shlex
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from server_process import REPO_ROOT, ServerProcess
from shield_server import service


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _shield(*args, env=None):
    return subprocess.run([sys.executable, "-m", "shield_server", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_install_writes_a_systemd_user_unit_whose_command_starts_the_server(tmp_path):
    port = _free_port()
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}
    done = _shield("service", "install", "--port", str(port), "--no-register", env=env)
    assert done.returncode == 0, done.stderr
    unit_file = tmp_path / "xdg" / "systemd" / "user" / "photo-shield.service"
    assert str(unit_file) in done.stdout

    unit = configparser.ConfigParser(interpolation=None)
    unit.read_string(unit_file.read_text())
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "default.target"
    command = shlex.split(unit["Service"]["ExecStart"])
    assert command[0] == sys.executable and command[-2:] == ["--port", str(port)]

    # Run exactly the unit's command, as systemd would, and check that a server answers on that port.
    config = tmp_path / "config"
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, bufsize=1,
                               env={**env, "SHIELD_CONFIG_DIR": str(config), "PYTHONUNBUFFERED": "1"})
    server = ServerProcess(process, config)
    try:
        server.wait_ready(90)
        assert server.port == port
        assert server.request("GET", "/v1/health").json()["status"] == "ready"
        status = _shield("service", "status", "--port", str(port), env=env)
        assert "installed at" in status.stdout and f"127.0.0.1:{port}: yes" in status.stdout, status.stdout
    finally:
        server.stop()

    assert _shield("service", "uninstall", "--port", str(port), env={**env, "PATH": ""}).returncode == 0
    assert not unit_file.exists()
    assert _shield("service", "status", env=env).returncode == 1


def test_without_a_service_manager_it_says_so_and_how_to_start_by_hand(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PATH": str(tmp_path)}  # no systemctl
    done = _shield("service", "install", env=env)
    assert done.returncode == 1
    assert "this system has no user service manager (`systemctl` is not installed)" in done.stderr, done.stderr
    assert "start it by hand after each login with `shield serve`" in done.stderr
    assert (tmp_path / "xdg" / "systemd" / "user" / "photo-shield.service").exists()


def test_when_registering_fails_it_prints_the_exact_commands_that_would(tmp_path):
    """A systemctl that cannot reach a user manager (as in a container): the commands to run later, verbatim."""
    fake = tmp_path / "bin" / "systemctl"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "PATH": f"{fake.parent}:/usr/bin:/bin"}
    done = _shield("service", "install", env=env)
    assert done.returncode == 1
    assert "Failed to connect to bus" in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines()]
    assert "systemctl --user daemon-reload" in lines and "systemctl --user enable --now photo-shield.service" in lines
    assert "start it by hand after each login with `shield serve`" in done.stderr


def test_every_subcommand_explains_itself():
    for command in ("redact", "serve", "pair", "service"):
        shown = _shield(command, "--help").stdout
        description = shown.split("\n\n")[1]
        assert not description.startswith(("positional", "options")) and len(description) > 60, (command, shown)
    service_help = _shield("service", "--help").stdout
    for action in ("install ", "uninstall ", "status "):
        assert f"  {action}" in service_help
    assert "Exit codes" in service_help and "Exit codes" in _shield("redact", "--help").stdout


def test_macos_launch_agent_and_windows_task_describe_the_same_command(tmp_path):
    spec = service.ServiceSpec(("/opt/shield env/python", "-m", "shield_server", "serve", "--port", "47321"))

    mac = service.platform_for("darwin", spec, home=tmp_path)
    assert mac.path == tmp_path / "Library" / "LaunchAgents" / "local.photoshield.server.plist"
    agent = plistlib.loads(mac.content)
    assert agent["ProgramArguments"] == list(spec.command)
    assert agent["RunAtLoad"] is True and agent["KeepAlive"] == {"SuccessfulExit": False}

    win = service.platform_for("win32", spec, home=tmp_path)
    task = ET.fromstring(win.content.decode("utf-16"))
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert task.find(".//t:LogonTrigger", ns) is not None
    assert task.find(".//t:RestartOnFailure", ns) is not None
    assert task.find(".//t:Exec/t:Command", ns).text == spec.command[0]
    assert task.find(".//t:Exec/t:Arguments", ns).text == "-m shield_server serve --port 47321"
    assert ("schtasks", "/Create", "/F", "/TN", "Photo Shield", "/XML", str(win.path)) in win.register


def test_systemd_quotes_paths_with_spaces():
    spec = service.ServiceSpec(("/home/a b/.venv/bin/python", "-m", "shield_server", "serve", "--port", "1"))
    exec_start = next(line for line in service.systemd_unit(spec).splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_start.removeprefix("ExecStart="))[0] == "/home/a b/.venv/bin/python"


def test_unknown_system_is_refused_clearly():
    try:
        service.platform_for("plan9", service.ServiceSpec(("x",)))
    except ValueError as exc:
        assert "plan9" in str(exc)
    else:
        raise AssertionError("an unknown system must be refused")


def test_readme_names_the_service_step():
    assert "shield service install" in (REPO_ROOT / "README.md").read_text()
