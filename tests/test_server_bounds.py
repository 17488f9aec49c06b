"""Every option is bounded before it is parsed, and parsed only after admission to the queue: oversized or
malformed options are a clear 400/413, never a 500, and N requests at once of each worst kind keep the real
server's peak memory within the numbers docs/SECURITY.md states ("Options" and "Memory")."""

import json
import os
import threading
import urllib.parse
import uuid

import pytest

from photos import astronaut, encode
from server_process import start_server

PARALLEL = 8  # the server's worker threads (1 in processing + 5 waiting + 2 spare)
BODY_LIMIT = 40_000_000
BOX_LIST_LIMIT = 64 * 1024  # security.MAX_BOX_LIST_BYTES


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("bounds-config"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def photo():
    return encode(astronaut()[:128, 160:288], "PNG")


def multipart(*parts: tuple[str, bytes, str | None]) -> tuple[bytes, dict]:
    """parts: (name, value, filename or None for a text field)."""
    boundary = uuid.uuid4().hex
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'.encode()
                    + (f'; filename="{filename}"'.encode() if filename else b"") + b"\r\n\r\n" + value + b"\r\n"
                    for name, value, filename in parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def empty_lists(size: int) -> bytes:
    """The cheapest JSON to send for the most objects parsed: [[],[],...] (the 1.1 GB field was this)."""
    count = (size - 4) // 3
    return b"[" + b"[]," * count + b"[]" + b" " * (size - 4 - 3 * count) + b"]"


def deep(depth: int, opening: str = "[") -> str:
    return opening * depth


def post(server, path: str, body: bytes, headers: dict | None = None, timeout: float = 120):
    return server.request("POST", path, body=body, headers=headers, timeout=timeout)


def assert_refused(reply, status: int, error: str, words: str) -> None:
    assert reply.status == status, reply
    answer = reply.json()
    assert answer["error"] == error and words in answer["message"], answer


# --- each field and parameter: a clear answer, never a 500 --------------------------------------------------

@pytest.mark.parametrize("name", ["regions", "keep"])
def test_a_box_list_field_over_its_limit_is_413_before_it_is_parsed(server, photo, name):
    body, headers = multipart((name, empty_lists(BOX_LIST_LIMIT + 1), None), ("file", photo, "a.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 413, "too_large", f"'{name}' is 65537 bytes")
    body, headers = multipart((name, empty_lists(BODY_LIMIT // 2), None), ("file", photo, "a.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 413, "too_large", "multipart field")


@pytest.mark.parametrize("name", ["fill", "sticker", "mode", "margin", "color", "other"])
def test_other_multipart_fields_are_refused_whatever_their_size(server, photo, name):
    for size in (8, BOX_LIST_LIMIT + 1):
        body, headers = multipart((name, b"x" * size, None), ("file", photo, "a.png"))
        reply = post(server, "/v1/protect", body, headers)
        assert reply.status in (400, 413) and reply.json()["error"] in ("bad_options", "too_large"), reply
    body, headers = multipart((name, b"noise", None), ("file", photo, "a.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 400, "bad_options", "Unknown multipart field")


def test_a_second_file_part_or_many_parts_are_refused(server, photo):
    body, headers = multipart(("file", photo, "a.png"), ("file", photo, "b.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 400, "bad_options", "more than once")
    body, headers = multipart(*[("regions", b"[]", None)] * 2000, ("file", photo, "a.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 413, "too_large", "parts")


@pytest.mark.parametrize("path, name, limit", [
    ("/v1/protect", "regions", BOX_LIST_LIMIT), ("/v1/detect", "keep", BOX_LIST_LIMIT),
    ("/v1/protect", "fill", 256), ("/v1/protect", "color", 256), ("/v1/protect", "margin", 256),
    ("/v1/protect", "sticker", 256), ("/v1/protect", "mode", 256), ("/v1/protect", "format", 256),
    ("/v1/video", "audio", 256), ("/v1/video", "fill", 256),
])
def test_each_query_parameter_has_a_size_limit(server, photo, path, name, limit):
    query = urllib.parse.urlencode({name: "1" * (limit + 1)})
    assert_refused(post(server, f"{path}?{query}", photo), 413, "too_large", f"'{name}'")
    query = urllib.parse.urlencode({name: "1" * limit})
    assert post(server, f"{path}?{query}", photo).status in (400, 413, 415, 422)  # checked, then refused


def test_query_parameters_on_every_path_are_bounded(server):
    for method, path in [("GET", "/v1/health"), ("GET", "/v1/identify"), ("GET", "/v1/pairing"),
                         ("GET", "/v1/video/x"), ("POST", "/v1/video/x/part"), ("DELETE", "/v1/video/x")]:
        reply = server.request(method, f"{path}?offset={'1' * 300}", body=b"" if method == "POST" else None)
        assert_refused(reply, 413, "too_large", "'offset'")
    many = "&".join(f"o{i}=1" for i in range(40))
    assert_refused(server.request("GET", f"/v1/health?{many}"), 400, "bad_options", "at most")
    assert_refused(server.request("GET", f"/v1/health?{'n' * 100}=1"), 400, "bad_options", "option name")
    long_query = "&".join(f"{name}={'1' * 60000}" for name in ("a", "b", "c", "d"))
    reply = server.request("GET", f"/v1/health?{long_query}")
    assert reply.status in (413, 431) and reply.json()["error"] == "too_large", reply


@pytest.mark.parametrize("name", ["regions", "keep"])
@pytest.mark.parametrize("text, expected", [
    (deep(5000), "deeper"), (deep(5000, "{"), "deeper"), (deep(100_000), "deeper"), ("[[[1, 2, 3, 4]]]", "deeper"),
    ('[[{"a": [1]}, 2, 3, 4]]', "deeper"), ('["[[[[", [1, 2, 3, 4]]', "must be a list")])
def test_deep_json_is_400_in_the_query_and_in_a_field(server, photo, name, text, expected):
    """`[` x 5000 was a 500 (RecursionError); nesting is counted before parsing. A bracket inside a string
    does not count."""
    query = urllib.parse.urlencode({name: text})
    if len(query) < BOX_LIST_LIMIT:
        assert_refused(post(server, f"/v1/protect?{query}", photo), 400, "bad_options", expected)
    body, headers = multipart((name, text.encode(), None), ("file", photo, "a.png"))
    reply = post(server, "/v1/protect", body, headers)
    if len(text) > BOX_LIST_LIMIT:
        assert_refused(reply, 413, "too_large", "limit")
    else:
        assert_refused(reply, 400, "bad_options", expected)


def test_the_cli_refuses_deep_nesting_without_a_traceback():
    from shield_server.errors import BadOptions
    from shield_server.pipeline import ProtectOptions

    for text in (deep(5000), "[" * 3 + "1, 2, 3, 4" + "]" * 3):
        with pytest.raises(BadOptions, match="deeper"):
            ProtectOptions.from_params({"regions": text})


def test_a_box_list_at_its_limit_is_parsed_and_checked(server, photo):
    boxes = json.dumps([[1, 2, 30, 40]] * 200)
    assert len(boxes) < BOX_LIST_LIMIT
    body, headers = multipart(("regions", boxes.encode(), None), ("file", photo, "a.png"))
    assert post(server, "/v1/protect", body, headers).status == 200
    body, headers = multipart(("regions", empty_lists(BOX_LIST_LIMIT), None), ("file", photo, "a.png"))
    assert_refused(post(server, "/v1/protect", body, headers), 400, "bad_options", "boxes")


# --- memory: N at once of each worst kind ------------------------------------------------------------------

def _attack_regions_field_40mb(photo):
    return ("/v1/protect",) + multipart(("regions", empty_lists(BODY_LIMIT - 4096), None), ("file", photo, "a.png"))


def _attack_regions_field_at_limit(photo):
    return ("/v1/protect",) + multipart(("regions", empty_lists(BOX_LIST_LIMIT), None), ("file", photo, "a.png"))


def _attack_keep_query_at_limit(photo):
    return f"/v1/detect?keep={urllib.parse.quote(empty_lists(BOX_LIST_LIMIT))}", photo, {}


def _attack_deep_nesting(photo):
    return f"/v1/protect?regions={'%5B' * 60000}", photo, {}


def _attack_many_parts(photo):
    return ("/v1/protect",) + multipart(*[("keep", b"[]", None)] * 50_000, ("file", photo, "a.png"))


def _attack_photo_body_at_limit(photo):
    return "/v1/protect", photo + os.urandom(BODY_LIMIT - len(photo)), {}


def _attack_photo_in_a_field_at_limit(photo):
    return ("/v1/protect",) + multipart(("file", photo + os.urandom(BODY_LIMIT - len(photo) - 4096), "a.png"))


# Peak RSS over the server's RSS just before, with PARALLEL requests at once (docs/SECURITY.md, "Memory").
# Waitress buffers each whole request before the app sees it (at most the body limit, 40 MB each); only the
# request admitted to processing is then read: its photo copied out (twice for a multipart file) and its
# options parsed. Options themselves add a few MB. Measured on the code before these bounds: one 40 MB
# regions field took +1194 MB, two +2360 MB; `[` x 60000 answered 500.
MB = 1_000_000
BUFFERED = PARALLEL * BODY_LIMIT * 5 // 4  # a buffer grows by reallocation while the body arrives
SLACK = 100 * MB  # threads, allocator, the small photo of the warm-up
ATTACKS = {  # name: (request, peak growth allowed for PARALLEL at once)
    "regions_field_40mb": (_attack_regions_field_40mb, BUFFERED + SLACK),
    "regions_field_at_limit": (_attack_regions_field_at_limit, SLACK),
    "keep_query_at_limit": (_attack_keep_query_at_limit, SLACK),
    "deep_nesting": (_attack_deep_nesting, SLACK),
    "many_parts": (_attack_many_parts, SLACK),
    "photo_body_at_limit": (_attack_photo_body_at_limit, BUFFERED + 3 * BODY_LIMIT + SLACK),
    "photo_in_a_field_at_limit": (_attack_photo_in_a_field_at_limit, BUFFERED + 3 * BODY_LIMIT + SLACK),
}


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="reads the server's peak RSS from Linux's /proc")
@pytest.mark.parametrize("name", ATTACKS)
def test_parallel_worst_case_requests_keep_memory_bounded(server, photo, name):
    make, allowed = ATTACKS[name]
    path, body, headers = make(photo)
    assert post(server, "/v1/protect", photo).status == 200  # the engine at its working size
    before = server.rss_bytes()
    server.reset_peak_rss()
    first = post(server, path, body, headers)  # one alone first: unbounded code fails here, not 8 times over
    growth = server.peak_rss_bytes() - before
    assert growth < allowed / 2 and first.status != 500, f"{name}: one took the server +{growth / MB:.0f} MB"
    replies = [None] * PARALLEL

    def send(i):
        try:
            replies[i] = post(server, path, body, headers)
        except (ConnectionError, OSError) as exc:  # the server may hang up on an over-long request
            replies[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(PARALLEL)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    growth = server.peak_rss_bytes() - before
    print(f"{name}: {PARALLEL} at once, peak RSS +{growth / MB:.0f} MB over {before / MB:.0f} MB")
    assert growth < allowed, f"{name}: {PARALLEL} at once took the server +{growth / MB:.0f} MB"
    statuses = [getattr(r, "status", None) for r in replies]
    assert all(s in (200, 400, 413, 415, 429, 503) for s in statuses if s is not None), statuses
    assert 500 not in statuses and server.alive() and server.request("GET", "/v1/health").status == 200
