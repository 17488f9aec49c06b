"""Load: 50 clients at once, each with its own 3 MP photo. Every client gets its own protected photo or a
429/503; nobody gets another client's photo or an unprotected one; memory stays bounded. Then small files
that declare huge later frames, pages or pictures: refused, the server's memory bounded, the server up."""

import contextlib
import io
import json
import os
import threading
import time
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from photos import (ASTRONAUT_FACE, astronaut, core, encode, gif_declaring, heic_declaring_second_image,
                    mpo_declaring_second_picture, tiff_declaring)
from server_process import start_server

CLIENTS = 50
SCALE = 3  # the astronaut at 1536x1536 on a 2048x1536 canvas: 3.1 MP
WIDTH, HEIGHT = 2048, 1536
BITS, BLOCK, MARKER_X, MARKER_Y = 16, 24, 1600, 1480
MAGENTA = np.array([255, 0, 255])


def marked_photo(number: int) -> bytes:
    canvas = np.full((HEIGHT, WIDTH, 3), 170, np.uint8)
    canvas[:, :512 * SCALE] = np.array(Image.fromarray(astronaut()).resize((512 * SCALE, 512 * SCALE)))[:HEIGHT]
    for bit in range(BITS):  # number in 8 bits, then its complement: a mix-up cannot pass as another number
        on = (number >> bit & 1) if bit < 8 else not (number >> (bit - 8) & 1)
        x = MARKER_X + bit * BLOCK
        canvas[MARKER_Y:MARKER_Y + BLOCK, x:x + BLOCK] = 255 if on else 0
    return encode(canvas, "JPEG", quality=90)


def read_marker(pixels: np.ndarray) -> int | None:
    bits = [pixels[MARKER_Y + BLOCK // 2, MARKER_X + b * BLOCK + BLOCK // 2].mean() > 128 for b in range(BITS)]
    if any(bits[b] == bits[b + 8] for b in range(8)):
        return None
    return sum(1 << b for b in range(8) if bits[b])


def face_is_replaced(pixels: np.ndarray) -> bool:
    rows, cols = core(tuple(v * SCALE for v in ASTRONAUT_FACE))
    return np.abs(pixels[rows, cols].astype(int) - MAGENTA).max() < 16


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("load-config"))
    yield server
    server.stop()


def test_photos_are_distinguishable():
    pixels = np.array(Image.open(io.BytesIO(marked_photo(37))).convert("RGB"))
    assert read_marker(pixels) == 37 and not face_is_replaced(pixels)


@contextlib.contextmanager
def peak_rss(server, every: float = 0.05):
    """Samples the server's RSS while the block runs; yields a one-item list that holds the peak."""
    peak = [server.rss_bytes()]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], server.rss_bytes())
            time.sleep(every)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()


def warm_up(server, photo: bytes) -> None:
    """Two photos at once, as the queue allows: the engine's buffers and caches reach their working size."""
    pair = [threading.Thread(target=server.request, args=("POST", "/v1/protect"), kwargs={"body": photo})
            for _ in range(2)]
    for thread in pair:
        thread.start()
    for thread in pair:
        thread.join(120)


def test_fifty_concurrent_clients(server):
    photos = [marked_photo(n) for n in range(CLIENTS)]
    answers = {}
    start_gate = threading.Barrier(CLIENTS)
    started_rss = server.rss_bytes()

    def client(n: int):
        start_gate.wait()
        answers[n] = server.request("POST", "/v1/protect?color=ff00ff", body=photos[n], timeout=120)

    # The baseline is the peak while two photos are processed at once: the detectors free their working
    # memory after each photo, so the RSS after the warm-up would leave out what one photo in flight takes.
    with peak_rss(server) as warm_peak:
        warm_up(server, photos[0])
    baseline_rss = warm_peak[0]
    with peak_rss(server) as load_peak:
        started = time.perf_counter()
        clients = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(180)
        seconds = time.perf_counter() - started
    peak_rss_under_load = max(load_peak[0], baseline_rss)

    assert sorted(answers) == list(range(CLIENTS)), f"clients without an answer: {set(range(CLIENTS)) - set(answers)}"
    counts = Counter(reply.status for reply in answers.values())
    assert set(counts) <= {200, 429, 503}, counts
    assert counts[200] >= 2 and counts[429] + counts[503] > 0, "50 at once must overflow a queue of 2 + 4"
    for n, reply in answers.items():
        if reply.status != 200:
            assert reply.json()["error"] == "busy" and reply.headers["Content-Type"] == "application/json"
            continue
        pixels = np.array(Image.open(io.BytesIO(reply.body)).convert("RGB"))
        assert pixels.shape == (HEIGHT, WIDTH, 3)
        assert read_marker(pixels) == n, f"client {n} got another client's photo"
        assert face_is_replaced(pixels), f"client {n} got an unprotected photo"
        assert json.loads(reply.headers["X-Shield-Report"])["faces"] >= 1
    growth = peak_rss_under_load - baseline_rss
    print(f"\nload: {CLIENTS} clients in {seconds:.1f}s; answers {dict(counts)}; RSS {started_rss / 1e6:.0f} MB "
          f"at start, {baseline_rss / 1e6:.0f} MB peak with 2 photos, peak {peak_rss_under_load / 1e6:.0f} MB "
          "under load")
    # The queue bounds the work to 2 photos, so 50 clients cost little more than 2 photos at once: the uploads
    # waitress holds (16 connections at most) and the answers in flight.
    assert growth < 600e6, f"50 clients took the server {growth / 1e6:.0f} MB beyond two photos at once"
    assert server.request("GET", "/v1/health").status == 200


# Each was measured on the engine before it measured every frame: 4.1 GB for the GIF with frame 2 at
# 16000x16000, 3.4 GB for the TIFF with page 2 at 16000x16000, 1.6 GB for the HEIC.
BOMBS = {
    "gif_frame_2_of_8000x8000": lambda: gif_declaring([(8000, 8000)]),
    "gif_frame_2_of_16000x16000": lambda: gif_declaring([(16000, 16000)]),
    "gif_frames_of_6000x6000": lambda: gif_declaring([(6000, 6000)] * 3),
    "tiff_page_2_of_16000x16000": lambda: tiff_declaring([(64, 48), (16000, 16000)]),
    "tiff_page_2_of_60000x60000": lambda: tiff_declaring([(64, 48), (60000, 60000)]),
    "heic_second_image_of_64_mp": lambda: heic_declaring_second_image(8000, 8000),
    "mpo_second_picture_of_64_mp": lambda: mpo_declaring_second_picture(8000, 8000),
}


@pytest.mark.parametrize("name", BOMBS)
def test_files_declaring_huge_later_frames_are_refused_with_memory_bounded(server, name):
    bomb = BOMBS[name]()
    assert len(bomb) < 100_000
    assert server.request("POST", "/v1/protect", body=encode(astronaut(), "PNG")).status == 200  # engine warm
    before = server.rss_bytes()
    with peak_rss(server, every=0.01) as peak:
        replies = [server.request("POST", "/v1/protect", body=bomb, timeout=60) for _ in range(3)]
    growth = peak[0] - before
    assert growth < 100e6, f"{name} took the server {growth / 1e6:.0f} MB"
    for reply in replies:
        assert reply.status == 413 and reply.json()["error"] == "too_large", reply
    assert server.alive() and server.request("GET", "/v1/health").status == 200


def _maps_mediapipe(pid: int) -> bool:
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        return "mediapipe" in maps.read()


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="the server's libraries are read from Linux's /proc")
def test_whole_person_models_load_with_the_first_people_photo(tmp_path):
    """A server that only protects faces, the default, never holds whole-person mode's models (MediaPipe,
    ~170 MB of its memory); the first people-mode photo loads them and is protected."""
    server = start_server(tmp_path / "config")
    try:
        photo = encode(astronaut(), "PNG")
        faces = server.request("POST", "/v1/protect?color=ff00ff", body=photo)
        assert faces.status == 200 and json.loads(faces.headers["X-Shield-Report"])["faces"] >= 1
        assert not _maps_mediapipe(server.pid), "a faces-only server loaded whole-person mode's models"
        people = server.request("POST", "/v1/protect?color=ff00ff&mode=people", body=photo, timeout=120)
        assert people.status == 200, people
        pixels = np.array(Image.open(io.BytesIO(people.body)).convert("RGB"))
        assert (np.abs(pixels[core(ASTRONAUT_FACE)].astype(int) - MAGENTA).max(axis=-1) < 16).mean() > 0.99
        assert _maps_mediapipe(server.pid)
    finally:
        server.stop()
