"""The shipped work queue, on a real server: a photo behind a long job is told to come back, not kept waiting."""

import io
import threading
import time

import pytest
from PIL import Image

from photos import astronaut, encode
from server_process import start_server

DEADLINE_S = 1.0


def long_gif(frames: int = 20) -> bytes:
    """A legal animation (6 MP in all, 3 MB) whose every frame the detector scans: seconds of work."""
    face = Image.fromarray(astronaut()).resize((480, 480))
    pictures = []
    for number in range(frames):
        canvas = Image.new("RGB", (640, 480), (number * 8 % 256, 90, 120))
        canvas.paste(face, (number * 4, 0))
        pictures.append(canvas)
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=40)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The queue as shipped (its sizes are not set here); only its deadline is shortened, to keep the test quick."""
    server = start_server(tmp_path_factory.mktemp("queue-config"), extra_args=("--queue-deadline", str(DEADLINE_S)))
    yield server
    server.stop()


def wait_until_active(server) -> None:
    deadline = time.monotonic() + 30
    while server.request("GET", "/v1/health").json()["queue"]["active"] == 0:
        assert time.monotonic() < deadline, "the long job never started"
        time.sleep(0.02)


def test_a_photo_behind_a_long_job_gets_503_with_retry_after(server):
    long = {}
    worker = threading.Thread(target=lambda: long.update(
        reply=server.request("POST", "/v1/protect", body=long_gif(), timeout=300)))
    worker.start()
    try:
        wait_until_active(server)
        started = time.monotonic()
        small = server.request("POST", "/v1/protect", body=encode(astronaut(), "PNG"))
        waited = time.monotonic() - started
        long_job_still_running = worker.is_alive()
    finally:
        worker.join(300)
    assert small.status == 503, small
    assert small.json()["error"] == "busy" and "waited too long" in small.json()["message"]
    assert int(small.headers["Retry-After"]) > 0
    assert waited < DEADLINE_S + 3 and long_job_still_running
    assert long["reply"].status == 200
    assert server.request("POST", "/v1/protect", body=encode(astronaut(), "PNG")).status == 200


def test_health_shows_the_shipped_queue(server):
    queue = server.request("GET", "/v1/health").json()["queue"]
    assert (queue["max_active"], queue["max_waiting"]) == (1, 5)
