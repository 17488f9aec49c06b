"""`shield service install|uninstall|status`: start the local server at login and restart it on failure.

One description of the service (`ServiceSpec`) is written in each platform's own form: a systemd user unit
on Linux, a LaunchAgent on macOS, a Task Scheduler task on Windows. Only the user's own session is
involved: nothing runs as root and the server still listens on 127.0.0.1 only.
"""

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from shield_server.server.serve import BIND_ADDRESS, DEFAULT_PORT

NAME = "photo-shield"
LAUNCHD_LABEL = "local.photoshield.server"
WINDOWS_TASK = "Photo Shield"
RESTART_DELAY_S = 5


@dataclass(frozen=True)
class ServiceSpec:
    command: tuple[str, ...]
    description: str = "Photo Shield local server (protects photos before they are posted)"

    @classmethod
    def for_port(cls, port: int) -> "ServiceSpec":
        # The interpreter of this installation, so the service runs exactly what the person set up.
        return cls((sys.executable, "-m", "shield_server", "serve", "--port", str(port)))


def systemd_unit(spec: ServiceSpec) -> str:
    exec_start = " ".join(_systemd_quote(part) for part in spec.command)
    return (f"[Unit]\nDescription={spec.description}\n\n"
            f"[Service]\nExecStart={exec_start}\nEnvironment=PYTHONUNBUFFERED=1\n"
            f"Restart=on-failure\nRestartSec={RESTART_DELAY_S}\n\n"
            f"[Install]\nWantedBy=default.target\n")


def launchd_plist(spec: ServiceSpec) -> bytes:
    return plistlib.dumps({
        "Label": LAUNCHD_LABEL, "ProgramArguments": list(spec.command), "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False}, "ThrottleInterval": RESTART_DELAY_S,
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"}, "ProcessType": "Background"})


def windows_task_xml(spec: ServiceSpec) -> str:
    program, *arguments = spec.command
    return f"""<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo><Description>{escape(spec.description)}</Description></RegistrationInfo>
  <Triggers><LogonTrigger><Enabled>true</Enabled></LogonTrigger></Triggers>
  <Principals><Principal id="Author"><LogonType>InteractiveToken</LogonType><RunLevel>LeastPrivilege</RunLevel></Principal></Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <RestartOnFailure><Interval>PT1M</Interval><Count>999</Count></RestartOnFailure>
  </Settings>
  <Actions Context="Author"><Exec><Command>{escape(program)}</Command><Arguments>{escape(_windows_join(arguments))}</Arguments></Exec></Actions>
</Task>
"""


def _systemd_quote(word: str) -> str:
    if word and not any(c in word for c in ' \t\n"\'\\$%;'):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%") + '"'


def _windows_join(words: list[str]) -> str:
    return subprocess.list2cmdline(words)


@dataclass(frozen=True)
class Platform:
    """Where a platform keeps the service file, its content, and the commands that (un)register it."""
    name: str
    path: Path
    content: bytes
    register: tuple[tuple[str, ...], ...]
    unregister: tuple[tuple[str, ...], ...]
    is_running: tuple[str, ...]


def platform_for(system: str, spec: ServiceSpec, home: Path | None = None) -> Platform:
    home = home or Path.home()
    if system.startswith("linux"):
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
        unit = f"{NAME}.service"
        return Platform("systemd user unit", config / "systemd" / "user" / unit, systemd_unit(spec).encode(),
                        (("systemctl", "--user", "daemon-reload"), ("systemctl", "--user", "enable", "--now", unit)),
                        (("systemctl", "--user", "disable", "--now", unit), ("systemctl", "--user", "daemon-reload")),
                        ("systemctl", "--user", "is-active", "--quiet", unit))
    if system == "darwin":
        path = home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        domain = f"gui/{os.getuid()}"
        return Platform("LaunchAgent", path, launchd_plist(spec),
                        (("launchctl", "bootstrap", domain, str(path)),),
                        (("launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"),),
                        ("launchctl", "print", f"{domain}/{LAUNCHD_LABEL}"))
    if system in ("win32", "cygwin"):
        folder = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local") / "PhotoShield"
        path = folder / "photo-shield-task.xml"
        return Platform("Task Scheduler task", path, windows_task_xml(spec).encode("utf-16"),
                        (("schtasks", "/Create", "/F", "/TN", WINDOWS_TASK, "/XML", str(path)),
                         ("schtasks", "/Run", "/TN", WINDOWS_TASK)),
                        (("schtasks", "/End", "/TN", WINDOWS_TASK), ("schtasks", "/Delete", "/F", "/TN", WINDOWS_TASK)),
                        ("schtasks", "/Query", "/TN", WINDOWS_TASK))
    raise ValueError(f"no service support for this system ({system})")


def _run_all(commands) -> str | None:
    """Runs each command; returns why one failed, or None."""
    for command in commands:
        if shutil.which(command[0]) is None:
            return f"`{command[0]}` is not available"
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip() or done.returncode}"
    return None


def _not_registered(platform: Platform, spec: ServiceSpec, failure: str) -> str:
    """What to do when registering failed: the exact commands, or that there is no service manager here."""
    manager = platform.register[0][0]
    start_by_hand = ("Until then, Photo Shield does not start by itself: start it by hand after each login "
                     f"with `shield serve` (the same as `{_command_line(spec.command)}`, or scripts/serve.sh "
                     "in the Photo Shield folder).")
    if shutil.which(manager) is None:
        return (f"shield service: this system has no user service manager (`{manager}` is not installed), so "
                f"the {platform.name} written at {platform.path} cannot be registered. {start_by_hand}")
    commands = "\n".join(f"    {_command_line(command)}" for command in platform.register)
    return (f"shield service: the {platform.name} is written at {platform.path}, but registering it failed "
            f"({failure}); on Linux this usually means no systemd user manager runs for this session (a "
            f"container, WSL without systemd, a login without a user session). Once one runs, these commands "
            f"register and start it:\n{commands}\n{start_by_hand}")


def _command_line(command: tuple[str, ...]) -> str:
    return subprocess.list2cmdline(command) if sys.platform in ("win32", "cygwin") else shlex.join(command)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{BIND_ADDRESS}:{port}/", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def main(args) -> int:
    spec = ServiceSpec.for_port(args.port or DEFAULT_PORT)
    try:
        platform = platform_for(sys.platform, spec)
    except ValueError as exc:
        print(f"shield service: {exc}", file=sys.stderr)
        return 2
    if args.action == "install":
        platform.path.parent.mkdir(parents=True, exist_ok=True)
        platform.path.write_bytes(platform.content)
        print(f"Wrote the {platform.name}: {platform.path}")
        if args.no_register:
            return 0
        failure = _run_all(platform.register)
        if failure:
            print(_not_registered(platform, spec, failure), file=sys.stderr)
            return 1
        print("Photo Shield now starts when you log in, and restarts if it stops.")
        return 0
    if args.action == "uninstall":
        failure = _run_all(platform.unregister) if platform.path.exists() else None
        platform.path.unlink(missing_ok=True)
        print(f"Removed the {platform.name}." + (f" ({failure})" if failure else ""))
        return 0
    installed = platform.path.exists()
    running = installed and shutil.which(platform.is_running[0]) is not None and \
        subprocess.run(platform.is_running, capture_output=True, timeout=30).returncode == 0
    port = args.port or DEFAULT_PORT
    print(f"{platform.name}: {'installed at ' + str(platform.path) if installed else 'not installed'}\n"
          f"registered and running: {'yes' if running else 'no'}\n"
          f"server answering on {BIND_ADDRESS}:{port}: {'yes' if _answers(port) else 'no'}")
    return 0 if installed else 1
