"""Hostile input and overload: bombs, truncated files, huge bodies, a full queue, a killed server."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from photos import astronaut, encode
from server_process import REPO_ROOT, start_server


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a token IDAT: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def still_answers(server):
    assert server.request("GET", "/v1/health").status == 200


def timed(call):
    start = time.perf_counter()
    result = call()
    return result, time.perf_counter() - start


def test_png_header_bomb_413(shield_server):
    reply, seconds = timed(lambda: shield_server.request("POST", "/v1/protect", body=png_claiming(40000, 40000)))
    assert reply.status == 413 and reply.json()["error"] == "too_large", reply
    assert seconds < 2  # about 1 ms: refused from the header, nothing decoded
    still_answers(shield_server)


def test_compressible_png_over_50_megapixels_413(shield_server):
    bomb = encode(np.zeros((7100, 7100), bool), "PNG")  # 50.4 MP of nothing: about 6 kB on the wire
    assert len(bomb) < 200_000
    reply, seconds = timed(lambda: shield_server.request("POST", "/v1/protect", body=bomb))
    assert reply.status == 413 and reply.json()["error"] == "too_large", reply
    assert seconds < 2  # about 1 ms: refused from the header, nothing decoded
    detect = shield_server.request("POST", "/v1/detect", body=bomb)
    assert detect.status == 413
    still_answers(shield_server)


def test_body_just_over_limit_413(shield_server):
    photo = encode(astronaut(), "PNG")
    body = photo + b"\0" * (40_000_001 - len(photo))  # passes the upload limit, not the photo limit
    reply = shield_server.request("POST", "/v1/protect", body=body)
    assert reply.status == 413 and reply.json()["error"] == "too_large"
    still_answers(shield_server)


def _read_answer(sock) -> bytes:
    """Everything the server sends until it hangs up (a reset after its answer ends it too)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def _send_until_refused(server, head: bytes, chunks):
    """Send a request head then body chunks until the server answers or hangs up; returns (answer, sent, s)."""
    start = time.perf_counter()
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
                sent += len(chunk)
                if time.perf_counter() - start > 20:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up on the rest of the upload
        answer = _read_answer(sock)
    return answer, sent, time.perf_counter() - start


def test_100_megabyte_body_refused_from_content_length(shield_server):
    head = (f"POST /v1/protect HTTP/1.1\r\nHost: 127.0.0.1:{shield_server.port}\r\n"
            f"X-Shield-Token: {shield_server.token}\r\nContent-Length: 100000000\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", shield_server.port), timeout=10) as sock:
        start = time.perf_counter()
        sock.sendall(head + b"\0" * 65536)
        answer = _read_answer(sock)
        seconds = time.perf_counter() - start
    assert answer.split(b" ")[1] == b"413" and b'"too_large"' in answer, answer
    assert seconds < 2  # refused from the header, before the body is read (about 1 ms when the machine is idle)
    megabyte = b"\0" * 1_000_000
    answer, sent, seconds = _send_until_refused(shield_server, head, (megabyte for _ in range(100)))
    assert sent < 100_000_000 and seconds < 5
    assert answer == b"" or answer.split(b" ")[1] == b"413"
    still_answers(shield_server)


def test_100_megabyte_chunked_body_refused_while_reading(shield_server):
    head = (f"POST /v1/protect HTTP/1.1\r\nHost: 127.0.0.1:{shield_server.port}\r\n"
            f"X-Shield-Token: {shield_server.token}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    megabyte = b"\0" * 1_000_000
    chunk = b"%x\r\n" % len(megabyte) + megabyte + b"\r\n"
    answer, sent, seconds = _send_until_refused(shield_server, head, (chunk for _ in range(100)))
    assert sent < 60_000_000, sent  # the limit is 40 MB; the rest was never read
    assert seconds < 10
    assert answer == b"" or answer.split(b" ")[1] == b"413"
    still_answers(shield_server)


def test_chunked_upload_is_accepted(shield_server):
    photo = encode(astronaut(), "PNG")
    head = (f"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1:{shield_server.port}\r\nConnection: close\r\n"
            f"X-Shield-Token: {shield_server.token}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunks = b"".join(b"%x\r\n" % len(photo[i:i + 50_000]) + photo[i:i + 50_000] + b"\r\n"
                      for i in range(0, len(photo), 50_000))
    with socket.create_connection(("127.0.0.1", shield_server.port), timeout=30) as sock:
        sock.sendall(head + chunks + b"0\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.split(b" ")[1] == b"200", answer[:300]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["faces"]


def test_malformed_http_gets_json_400(shield_server):
    with socket.create_connection(("127.0.0.1", shield_server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/protect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: banana\r\n\r\n")
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.split(b" ")[1] == b"400" and b'"error": "bad_request"' in answer, answer
    still_answers(shield_server)


def big_png(side: int = 2048) -> bytes:
    """side x 1.5 side of noisy PNG (6 MP by default): the server needs a second or more on two cores."""
    face = np.array(Image.fromarray(astronaut()).resize((side, side)))
    canvas = np.concatenate([face, face[:, :side // 2]], axis=1)
    noise = np.random.default_rng(1).integers(0, 40, canvas.shape, dtype=np.uint8)
    return encode(canvas // 2 + noise, "PNG")


@pytest.fixture(scope="module")
def tiny_queue_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("queue-config"),
                          extra_args=("--max-active", "1", "--max-waiting", "1", "--queue-deadline", "1.0"))
    yield server
    server.stop()


def _wait_for_queue(server, active: int, waiting: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        queue = server.request("GET", "/v1/health").json()["queue"]
        if (queue["active"], queue["waiting"]) == (active, waiting):
            return
        time.sleep(0.02)
    raise AssertionError(f"the queue never reached {active} active, {waiting} waiting")


def test_full_queue_429_and_deadline_503(tiny_queue_server):
    photo = big_png()  # keeps the only worker busy for over a second: longer than the queue deadline
    replies = {}

    def send(name):
        replies[name] = tiny_queue_server.request("POST", "/v1/protect", body=photo)
    first, second = threading.Thread(target=send, args=("first",)), threading.Thread(target=send, args=("second",))
    first.start()
    _wait_for_queue(tiny_queue_server, active=1, waiting=0)
    second.start()
    _wait_for_queue(tiny_queue_server, active=1, waiting=1)
    third = tiny_queue_server.request("POST", "/v1/protect", body=encode(astronaut(), "PNG"))
    second.join(60)
    first.join(60)
    assert (replies["first"].status, replies["second"].status, third.status) == (200, 503, 429), replies
    for reply in (replies["second"], third):
        assert reply.json()["error"] == "busy" and reply.headers["Content-Type"] == "application/json"
        assert int(reply.headers["Retry-After"]) > 0
    assert tiny_queue_server.request("GET", "/v1/health").json()["queue"]["active"] == 0
    still_answers(tiny_queue_server)


def test_killed_mid_request_gives_an_error_never_the_photo(tmp_path):
    server = start_server(tmp_path / "config")
    photo = big_png(3000)  # 13.5 MP: several seconds of work, so the kill lands mid-request
    outcome = {}

    def send():
        try:
            outcome["reply"] = server.request("POST", "/v1/protect", body=photo)
        except Exception as exc:  # noqa: BLE001 - any client-side failure is the expected outcome
            outcome["error"] = exc
    thread = threading.Thread(target=send)
    thread.start()
    _wait_for_queue(server, active=1, waiting=0)  # the photo is in the middle of being protected
    server.kill()
    thread.join(30)
    assert "reply" not in outcome, outcome["reply"]  # no status, no bytes: the client only sees a failure
    assert "error" in outcome


def test_sigterm_and_sigint_stop_cleanly(tmp_path):
    for sig in (signal.SIGTERM, signal.SIGINT):
        server = start_server(tmp_path / "config")
        server.process.send_signal(sig)
        assert server.process.wait(20) == 0
        server.stop()
        assert "Photo Shield stopped." in server.output_tail()


def test_port_in_use_is_reported(shield_server, tmp_path):
    run = subprocess.run([sys.executable, "-m", "shield_server.server.serve", "--port", str(shield_server.port)],
                         cwd=REPO_ROOT, env={"SHIELD_CONFIG_DIR": str(tmp_path), "PATH": "/usr/bin"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "cannot listen" in run.stderr


def _open_files(pid: int) -> set[str]:
    """Paths of regular files the process holds open (sockets, pipes and the like left out)."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/"):
            held.add(target)
    return held


def test_uploads_and_answers_never_touch_disk(shield_server):
    """Waitress spills big bodies to temporary files unless told not to: check none appears mid-upload."""
    before = _open_files(shield_server.pid)
    total = 30_000_000
    head = (f"POST /v1/protect?format=png HTTP/1.1\r\nHost: 127.0.0.1:{shield_server.port}\r\n"
            f"X-Shield-Token: {shield_server.token}\r\nContent-Length: {total}\r\n\r\n").encode()
    photo = encode(np.random.default_rng(3).integers(0, 255, (2000, 2500, 3), dtype=np.uint8), "BMP")
    body = photo + b"\0" * (total - len(photo))
    with socket.create_connection(("127.0.0.1", shield_server.port), timeout=30) as sock:
        sock.sendall(head + body[:20_000_000])
        time.sleep(0.5)
        during_upload = _open_files(shield_server.pid) - before
        sock.sendall(body[20_000_000:])
        time.sleep(0.3)
        while_answering = _open_files(shield_server.pid) - before
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
    assert answer.split(b" ")[1] == b"200", answer[:300]
    assert not during_upload and not while_answering, (during_upload, while_answering)
