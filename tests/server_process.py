"""Run a real `shield serve` process for tests: the server suites and the extension's suites import this.

    server = start_server(tmp_path / "config")      # any free port, waits until /v1/health answers
    server.base_url, server.port, server.token       # "http://127.0.0.1:PORT", PORT, the pairing token
    server.request("POST", "/v1/protect", body=photo) # -> Reply(status, headers, body), token sent by default
    server.stop()                                     # SIGTERM, waits for a clean exit; returns the exit code
    server.kill()                                     # SIGKILL (crash simulation)
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOKEN_FILE = "pairing-token"  # shield_server.server.pairing.TOKEN_FILE
_LISTENING = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"Reply({self.status}, {self.headers.get('Content-Type')}, {self.body[:200]!r})"


class ServerProcess:
    def __init__(self, process: subprocess.Popen, config_dir: Path):
        self.process = process
        self.config_dir = Path(config_dir)
        self.port: int | None = None
        self.output: deque[str] = deque(maxlen=400)  # the server's stdout+stderr, for failure messages
        self._listening = threading.Event()
        threading.Thread(target=self._read_output, daemon=True).start()

    def _read_output(self) -> None:
        for line in self.process.stdout:
            self.output.append(line.rstrip("\n"))
            match = _LISTENING.search(line)
            if match and self.port is None:
                self.port = int(match.group(1))
                self._listening.set()
        self._listening.set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """Read on every use, so a test that rotates the token sees the new one."""
        return (self.config_dir / TOKEN_FILE).read_text(encoding="ascii").strip()

    def headers(self, **extra) -> dict:
        return {"X-Shield-Token": self.token, **extra}

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                token: bool = True, timeout: float = 60) -> Reply:
        """One HTTP request with full control of the headers (a "Host" entry replaces the real one)."""
        sent = {**({"X-Shield-Token": self.token} if token else {}), **(headers or {})}
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=sent)
            answer = connection.getresponse()
            return Reply(answer.status, answer.headers, answer.read())
        finally:
            connection.close()

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.output)[-lines:])

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def reset_peak_rss(self) -> None:
        """Linux: the peak (VmHWM) starts again from the current RSS."""
        with open(f"/proc/{self.pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")

    def peak_rss_bytes(self) -> int:
        """The highest RSS since the start or the last reset_peak_rss(), as the kernel counted it."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._listening.wait(timeout) or self.port is None:
            self.kill()
            raise RuntimeError(f"shield serve did not start:\n{self.output_tail()}")
        while time.monotonic() < deadline:
            try:
                request = urllib.request.Request(f"{self.base_url}/v1/health", headers=self.headers())
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if json.load(answer).get("status") == "ready":
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if not self.alive():
                break
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"shield serve never became ready:\n{self.output_tail()}")

    def stop(self, timeout: float = 20) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.wait()

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait()


def _die_with_parent() -> None:
    """In the child before exec: a killed test run must not leave servers behind (Linux only). The signal
    follows the *thread* that started the server, so call start_server from a thread that outlives it."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_server(config_dir, port: int | None = None, extra_args=(), timeout: float = 90,
                 env: dict | None = None) -> ServerProcess:
    """Start `shield serve` on 127.0.0.1 (port None = any free port) with its own config folder; env: the
    whole environment (default: this process's)."""
    config_dir = Path(config_dir)
    env = {**(os.environ if env is None else env), "SHIELD_CONFIG_DIR": str(config_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "shield_server.server.serve", "--port", str(port or 0), *extra_args]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                               preexec_fn=_die_with_parent)
    server = ServerProcess(process, config_dir)
    server.wait_ready(timeout)
    return server
