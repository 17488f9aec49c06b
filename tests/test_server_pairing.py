"""The pairing token: created safely, shown by `shield pair`, rotated under a running server."""

import os
import stat
import subprocess
import sys

import pytest

from server_process import REPO_ROOT, start_server
from shield_server.server import pairing


def shield(config_dir, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHIELD_CONFIG_DIR": str(config_dir)}
    return subprocess.run([sys.executable, "-m", "shield_server", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_token_created_private_with_256_bits(tmp_path):
    folder = tmp_path / "config"
    token = pairing.load_or_create(folder)
    assert len(token) == 43  # 32 random bytes, URL-safe base64
    assert mode(folder) == 0o700 and mode(folder / pairing.TOKEN_FILE) == 0o600
    assert pairing.load_or_create(folder) == token
    assert pairing.load_or_create(tmp_path / "other") != token


def test_loose_permissions_are_tightened(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir(mode=0o755)
    token = pairing.load_or_create(folder)
    os.chmod(folder / pairing.TOKEN_FILE, 0o644)
    os.chmod(folder, 0o755)
    assert pairing.load_or_create(folder) == token
    assert mode(folder) == 0o700 and mode(folder / pairing.TOKEN_FILE) == 0o600


def test_symlinked_token_file_is_refused(tmp_path):
    folder = tmp_path / "config"
    folder.mkdir(mode=0o700)
    (tmp_path / "elsewhere").write_text("x" * 43)
    (folder / pairing.TOKEN_FILE).symlink_to(tmp_path / "elsewhere")
    with pytest.raises(pairing.PairingError):
        pairing.load_or_create(folder)


def test_pair_command_shows_and_rotates(tmp_path):
    shown = shield(tmp_path, "pair")
    assert shown.returncode == 0, shown.stderr
    token = shown.stdout.strip()
    assert token == (tmp_path / pairing.TOKEN_FILE).read_text().strip()
    rotated = shield(tmp_path, "pair", "--rotate")
    assert rotated.returncode == 0 and rotated.stdout.strip() not in ("", token)
    assert mode(tmp_path / pairing.TOKEN_FILE) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name != pairing.TOKEN_FILE]  # no temporary file left


def test_running_server_follows_rotation_and_deletion(tmp_path):
    server = start_server(tmp_path / "config")
    try:
        old = server.token
        assert shield(server.config_dir, "pair", "--rotate").returncode == 0
        assert server.token != old
        assert server.request("GET", "/v1/health", token=False, headers={"X-Shield-Token": old}).status == 401
        assert server.request("GET", "/v1/health").status == 200
        os.remove(server.config_dir / pairing.TOKEN_FILE)  # no token file: nobody is let in
        assert server.request("GET", "/v1/health", token=False, headers={"X-Shield-Token": old}).status == 401
        assert shield(server.config_dir, "pair").returncode == 0  # a fresh pairing works again at once
        assert server.request("GET", "/v1/health").status == 200
    finally:
        server.stop()


def test_shield_serve_command(tmp_path):
    """The real `shield serve` entry point (shield_server.cli -> serve.main) starts on the port it was given and stops."""
    env = {**os.environ, "SHIELD_CONFIG_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "shield_server", "serve", "--port", "0"], cwd=REPO_ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "listening on http://127.0.0.1:" in line:
                break
        assert any("listening on http://127.0.0.1:" in line for line in lines), "".join(lines)
        process.terminate()
        rest = process.stdout.read()  # ends when the server exits
        assert process.wait(20) == 0 and "stopped" in rest
        said = "".join(lines) + rest
        assert "Install the browser extension" in said and "/connect" in said  # how a newcomer gets paired
    finally:
        process.kill()


@pytest.mark.parametrize("args", [("--port", "70000"), ("--allow-origin", "*"),
                                  ("--allow-origin", "https://example.com/path")])
def test_serve_refuses_bad_arguments(tmp_path, args):
    run = shield(tmp_path, "serve", *args)
    assert run.returncode == 2 and "shield serve:" in run.stderr


def test_allow_origin_lets_that_origin_in(tmp_path):
    extra = "chrome-extension://abcdefghijklmnopabcdefghijklmnop"
    server = start_server(tmp_path / "config", extra_args=("--allow-origin", extra))
    try:
        reply = server.request("GET", "/v1/health", headers={"Origin": extra})
        assert reply.status == 200 and reply.headers["Access-Control-Allow-Origin"] == extra
        other = server.request("GET", "/v1/health", headers={"Origin": extra.replace("abc", "xyz")})
        assert other.status == 403
    finally:
        server.stop()
