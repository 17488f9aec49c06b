"""The API contract of `shield serve`: answers, error codes, Host/Origin/token checks, CORS, headers."""

import hashlib
import hmac
import io
import json
import uuid

import numpy as np
import pytest
from PIL import Image

from photos import ASTRONAUT_FACE, astronaut, core, decode, encode

EXTENSION = "chrome-extension://kcbncmfikphjokbejdopkgddbliakibd"
MAGENTA = np.array([255, 0, 255], np.uint8)


@pytest.fixture(scope="module")
def photo() -> bytes:
    return encode(astronaut(), "PNG")


def assert_json_error(reply, status: int, code: str):
    assert reply.status == status, reply
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.json()["error"] == code and reply.json()["message"]
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-store"


def assert_face_replaced(data: bytes):
    pixels = decode(data)
    rows, cols = core(ASTRONAUT_FACE)
    assert (pixels[rows, cols, :3] == MAGENTA).all()


def test_health_says_ready(shield_server):
    reply = shield_server.request("GET", "/v1/health")
    assert reply.status == 200
    body = reply.json()
    assert body["status"] == "ready" and body["version"] and body["detectors"]


def test_protect_raw_body(shield_server, photo):
    reply = shield_server.request("POST", "/v1/protect?color=ff00ff", body=photo)
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"] == "image/png"
    assert reply.headers["Content-Disposition"] == 'attachment; filename="photo.protected.png"'
    report = json.loads(reply.headers["X-Shield-Report"])
    assert report["faces"] >= 1 and report["width"] == 512 and report["height"] == 512
    assert len(report["boxes"]) == report["faces"] and "total" in report["timings_ms"]
    assert_face_replaced(reply.body)
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Cache-Control"] == "no-store"


def test_protect_multipart_and_options(shield_server, photo):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"me.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    reply = shield_server.request("POST", "/v1/protect?fill=%23ff00ff&margin=0.5&format=jpeg&mode=faces",
                                  body=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert reply.status == 200, reply
    assert reply.headers["Content-Type"] == "image/jpeg"
    assert reply.headers["Content-Disposition"].endswith('.jpg"')
    pixels = np.array(Image.open(io.BytesIO(reply.body)).convert("RGB")).astype(int)
    rows, cols = core(ASTRONAUT_FACE)
    assert np.abs(pixels[rows, cols] - MAGENTA).max() < 12  # JPEG keeps a solid colour within a few levels


def test_protect_noise_fill(shield_server, photo):
    reply = shield_server.request("POST", "/v1/protect?fill=noise", body=photo)
    assert reply.status == 200
    rows, cols = core(ASTRONAUT_FACE)
    assert not np.array_equal(decode(reply.body)[rows, cols], astronaut()[rows, cols])


def test_detect_returns_faces(shield_server, photo):
    reply = shield_server.request("POST", "/v1/detect", body=photo)
    assert reply.status == 200
    body = reply.json()
    assert body["width"] == 512 and body["height"] == 512
    on_the_face = [f for f in body["faces"] if f["box"][0] < 200 and f["box"][1] < 100
                   and f["box"][2] > 250 and f["box"][3] > 150]
    assert on_the_face and on_the_face[0]["score"] > 0.5 and on_the_face[0]["detector"]


@pytest.mark.parametrize("query", ["fill=blur", "fill=pixelate", "margin=9", "format=bmp", "mode=cats",
                                   "color=zzz", "secret=1"])
def test_bad_options_400(shield_server, photo, query):
    assert_json_error(shield_server.request("POST", f"/v1/protect?{query}", body=photo), 400, "bad_options")


@pytest.mark.parametrize("method, path", [("POST", "/v1/protect?fill=noise&fill=%23000000"),
                                          ("POST", "/v1/detect?mode=people&format=png&mode=faces"),
                                          ("GET", f"/v1/identify?challenge={'a' * 20}&challenge={'b' * 20}")])
def test_repeated_option_400(shield_server, photo, method, path):
    reply = shield_server.request(method, path, body=photo if method == "POST" else None)
    assert_json_error(reply, 400, "bad_options")
    assert "more than once" in reply.json()["message"]


def test_multipart_without_file_field_400(shield_server):
    body = b"--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n"
    reply = shield_server.request("POST", "/v1/protect", body=body,
                                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_json_error(reply, 400, "bad_options")


@pytest.mark.parametrize("token", [None, "", "wrong", "x" * 43])
def test_missing_or_wrong_token_401(shield_server, photo, token):
    headers = {} if token is None else {"X-Shield-Token": token}
    for path in ("/v1/protect", "/v1/detect"):
        assert_json_error(shield_server.request("POST", path, body=photo, headers=headers, token=False),
                          401, "unauthorized")
    assert_json_error(shield_server.request("GET", "/v1/health", headers=headers, token=False), 401, "unauthorized")


def near_misses(secret: str) -> list[str]:
    """Wrong secrets a comparison of only part of the secret would take: all but the last character right,
    the first 8 right, a prefix, the secret with more after it."""
    other = "A" if secret[-1] != "A" else "B"
    return [secret[:-1] + other, secret[:8] + "x" * (len(secret) - 8), secret[:8], secret[:-1], secret + "x"]


def test_a_secret_sharing_a_prefix_is_refused(shield_server):
    for wrong in near_misses(shield_server.token):
        reply = shield_server.request("GET", "/v1/health", headers={"X-Shield-Token": wrong}, token=False)
        assert_json_error(reply, 401, "unauthorized")
    own = f"http://127.0.0.1:{shield_server.port}"
    for wrong in near_misses(_page_key(shield_server)):
        reply = shield_server.request("GET", "/v1/health", headers={"X-Shield-Page-Key": wrong, "Origin": own},
                                      token=False)
        assert_json_error(reply, 401, "unauthorized")
    assert shield_server.request("GET", "/v1/health").status == 200


def test_identify_proves_the_server_knows_the_token_without_being_sent_it(shield_server):
    challenge = uuid.uuid4().hex
    reply = shield_server.request("GET", f"/v1/identify?challenge={challenge}", token=False,
                                  headers={"Origin": EXTENSION})
    assert reply.status == 200 and reply.headers["Access-Control-Allow-Origin"] == EXTENSION
    expected = hmac.new(shield_server.token.encode(), f"photo-shield-proof:{challenge}".encode(),
                        hashlib.sha256).hexdigest()
    assert reply.json() == {"proof": expected}
    assert shield_server.token not in reply.body.decode()
    for bad in ("", "?challenge=short", "?challenge=has%20space%20in%20it%20ok"):
        assert_json_error(shield_server.request("GET", f"/v1/identify{bad}", token=False), 400, "bad_options")
    too_long = shield_server.request("GET", "/v1/identify?challenge=" + "x" * 300, token=False)
    assert_json_error(too_long, 413, "too_large")  # over every option's size limit (docs/API.md)
    evil = shield_server.request("GET", f"/v1/identify?challenge={challenge}", token=False,
                                 headers={"Origin": "https://evil.example"})
    assert_json_error(evil, 403, "forbidden_origin")


def test_query_token_is_not_a_credential(shield_server, photo):
    reply = shield_server.request("POST", f"/v1/protect?token={shield_server.token}", body=photo, token=False)
    assert reply.status in (400, 401) and reply.body[:4] != b"\x89PNG"


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1", "127.0.0.1:1",
                                  "localhost:{other}", "0.0.0.0:{port}", "127.0.0.2:{port}", "127.0.0.1:{port}.evil"])
def test_foreign_host_403(shield_server, photo, host):
    host = host.format(port=shield_server.port, other=shield_server.port + 1)
    reply = shield_server.request("POST", "/v1/protect", body=photo, headers={"Host": host})
    assert_json_error(reply, 403, "forbidden_host")
    assert_json_error(shield_server.request("GET", "/", headers={"Host": host}, token=False), 403, "forbidden_host")


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "[::1]:{port}"])
def test_loopback_hosts_accepted(shield_server, host):
    reply = shield_server.request("GET", "/v1/health", headers={"Host": host.format(port=shield_server.port)})
    assert reply.status == 200


def test_missing_host_403(shield_server):
    import socket
    with socket.create_connection(("127.0.0.1", shield_server.port), timeout=10) as sock:
        sock.sendall(f"GET /v1/health HTTP/1.0\r\nX-Shield-Token: {shield_server.token}\r\n\r\n".encode())
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.split(b" ")[1] == b"403" and b"forbidden_host" in answer


@pytest.mark.parametrize("origin", ["https://evil.example", "http://evil.example", "null",
                                    "chrome-extension://aaaabbbbccccddddeeeeffffgggghhhh",
                                    "http://127.0.0.1:1", "http://localhost", "moz-extension://not-a-uuid"])
def test_foreign_origin_403(shield_server, photo, origin):
    reply = shield_server.request("POST", "/v1/protect", body=photo, headers={"Origin": origin})
    assert_json_error(reply, 403, "forbidden_origin")
    assert "Access-Control-Allow-Origin" not in reply.headers
    preflight = shield_server.request("OPTIONS", "/v1/protect", token=False, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-shield-token"})
    assert_json_error(preflight, 403, "forbidden_origin")


@pytest.mark.parametrize("origin", [EXTENSION, f"moz-extension://{uuid.uuid4()}"])
def test_extension_origins_get_cors(shield_server, photo, origin):
    preflight = shield_server.request("OPTIONS", "/v1/protect", token=False, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-shield-token, content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert "X-Shield-Token" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    reply = shield_server.request("POST", "/v1/protect", body=photo, headers={"Origin": origin})
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == origin
    assert "X-Shield-Report" in reply.headers["Access-Control-Expose-Headers"]
    assert "Origin" in reply.headers["Vary"]


def test_extension_origin_still_needs_token(shield_server, photo):
    reply = shield_server.request("POST", "/v1/protect", body=photo, token=False, headers={"Origin": EXTENSION})
    assert_json_error(reply, 401, "unauthorized")


def test_not_an_image_415(shield_server):
    for body in (b"hello, this is text", b"%PDF-1.7\n" + b"0" * 1000, b"<svg xmlns='http://www.w3.org/2000/svg'/>"):
        assert_json_error(shield_server.request("POST", "/v1/protect", body=body), 415, "unsupported_media_type")


def test_truncated_jpeg_422(shield_server):
    jpeg = encode(astronaut(), "JPEG", quality=90)
    for cut in (len(jpeg) // 2, 200):
        reply = shield_server.request("POST", "/v1/protect", body=jpeg[:cut])
        assert_json_error(reply, 422, "undecodable_image")


def test_empty_body_422(shield_server):
    assert_json_error(shield_server.request("POST", "/v1/protect", body=b""), 422, "undecodable_image")


def test_unknown_path_and_method_are_json(shield_server):
    assert_json_error(shield_server.request("GET", "/v1/nothing"), 404, "not_found")
    assert_json_error(shield_server.request("GET", "/v1/protect"), 405, "method_not_allowed")


def test_error_never_echoes_the_photo(shield_server, photo):
    marker = b"UNIQUE-MARKER-7f3a"
    for path, headers in (("/v1/protect?fill=blur", {}), ("/v1/protect", {"Origin": "https://evil.example"}),
                          ("/v1/protect", {"X-Shield-Token": "wrong"})):
        reply = shield_server.request("POST", path, body=photo + marker, headers=headers)
        assert reply.status >= 400
        assert marker not in reply.body and b"PNG" not in reply.body


def test_web_page_headers(shield_server):
    reply = shield_server.request("GET", "/", token=False)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Content-Security-Policy"] == (
        "default-src 'self'; img-src 'self' blob: data:; media-src blob:; frame-ancestors 'none'")
    assert reply.headers["X-Frame-Options"] == "DENY"
    assert shield_server.token.encode() not in reply.body
    for name in ("app.js", "style.css"):
        assert shield_server.request("GET", f"/{name}", token=False).status == 200


def test_web_page_refused_to_other_origins(shield_server):
    reply = shield_server.request("GET", "/", token=False, headers={"Origin": "https://evil.example"})
    assert_json_error(reply, 403, "forbidden_origin")


@pytest.mark.parametrize("destination", ["script", "iframe", "empty", "image"])
def test_web_page_only_loaded_as_a_document(shield_server, destination):
    reply = shield_server.request("GET", "/", token=False, headers={"Sec-Fetch-Dest": destination})
    assert_json_error(reply, 403, "forbidden_origin")
    assert b"shield-page-key" not in reply.body
    assert shield_server.request("GET", "/", token=False, headers={"Sec-Fetch-Dest": "document"}).status == 200


def _page_key(server) -> str:
    html = server.request("GET", "/", token=False).body.decode()
    return html.split('name="shield-page-key" content="')[1].split('"')[0]


def test_page_key_authorises_only_the_page_origin(shield_server, photo):
    key = _page_key(shield_server)
    own = f"http://127.0.0.1:{shield_server.port}"
    ok = shield_server.request("POST", "/v1/protect", body=photo, token=False,
                               headers={"X-Shield-Page-Key": key, "Origin": own})
    assert ok.status == 200
    extension = shield_server.request("POST", "/v1/protect", body=photo, token=False,
                                      headers={"X-Shield-Page-Key": key, "Origin": EXTENSION})
    assert_json_error(extension, 401, "unauthorized")
    wrong = shield_server.request("POST", "/v1/protect", body=photo, token=False,
                                  headers={"X-Shield-Page-Key": "wrong", "Origin": own})
    assert_json_error(wrong, 401, "unauthorized")
