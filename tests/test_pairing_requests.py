"""One-click pairing against a real server: the extension asks, the same user allows it in the local page,
the extension (and only it) collects the token. docs/SECURITY.md, "One-click pairing"."""

import http.client
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from server_process import REPO_ROOT, start_server

EXTENSION_ORIGIN = {"Origin": "chrome-extension://kcbncmfikphjokbejdopkgddbliakibd"}


@pytest.fixture()
def server(tmp_path):
    # Its own server: open requests are server state, and MAX_OPEN is tested.
    server = start_server(tmp_path / "config")
    yield server
    server.stop()


def page_key(server) -> str:
    html = server.request("GET", "/connect", token=False).body.decode()
    return re.search(r'name="shield-page-key" content="([^"]+)"', html).group(1)


def open_request(server, headers=EXTENSION_ORIGIN):
    return server.request("POST", "/v1/pairing", token=False, headers=headers)


def collect(server, opened, secret=None):
    return server.request("GET", f"/v1/pairing/{opened['id']}", token=False,
                          headers={**EXTENSION_ORIGIN, "X-Shield-Pairing-Secret": secret or opened["secret"]})


def as_page(server, method, path):
    return server.request(method, path, token=False, headers={"X-Shield-Page-Key": page_key(server)})


def test_allowed_request_hands_the_token_to_the_extension_once(server):
    reply = open_request(server)
    assert reply.status == 200, reply
    opened = reply.json()
    assert re.fullmatch(r"\d{3} \d{3}", opened["code"])
    assert collect(server, opened).json() == {"status": "pending"}

    listed = as_page(server, "GET", "/v1/pairing")
    assert listed.status == 200
    assert listed.json()["requests"] == [{"id": opened["id"], "code": opened["code"],
                                          "origin": EXTENSION_ORIGIN["Origin"]}]
    assert opened["secret"] not in listed.body.decode()  # the page never sees what collects the token

    assert as_page(server, "POST", f"/v1/pairing/{opened['id']}/allow").status == 200
    assert collect(server, opened).json() == {"status": "allowed", "token": server.token}
    assert collect(server, opened).status == 404  # once only
    assert as_page(server, "GET", "/v1/pairing").json()["requests"] == []


def test_refused_request_gets_no_token(server):
    opened = open_request(server).json()
    assert as_page(server, "POST", f"/v1/pairing/{opened['id']}/refuse").status == 200
    answer = collect(server, opened).json()
    assert answer == {"status": "refused"}


def test_only_an_extension_can_ask_and_only_with_its_secret(server):
    for headers in ({"Origin": "https://evil.example"}, {"Origin": f"http://127.0.0.1:{server.port}"}, {}):
        reply = open_request(server, headers)
        assert reply.status == 403, (headers, reply)
    opened = open_request(server).json()
    as_page(server, "POST", f"/v1/pairing/{opened['id']}/allow")
    secret = opened["secret"]
    for wrong in (secret[:-2] + "xx", secret[:1], secret[:-1], secret + "x", "x" + secret, secret.upper()):
        reply = collect(server, opened, secret=wrong)
        assert reply.status == 404 and server.token.encode() not in reply.body, (wrong, reply)
    empty = server.request("GET", f"/v1/pairing/{opened['id']}", token=False, headers=EXTENSION_ORIGIN)
    assert empty.status == 404 and server.token.encode() not in empty.body
    assert collect(server, opened).json() == {"status": "allowed", "token": server.token}


def test_listing_and_allowing_need_the_page_key_or_token(server):
    opened = open_request(server).json()
    assert server.request("GET", "/v1/pairing", token=False).status == 401
    refused = server.request("POST", f"/v1/pairing/{opened['id']}/allow", token=False,
                             headers={"X-Shield-Page-Key": "not-the-key"})
    assert refused.status == 401
    assert collect(server, opened).json() == {"status": "pending"}


def firefox(number: int) -> dict:
    return {"Origin": f"moz-extension://{number:08d}-0000-4000-8000-000000000000"}


def test_open_requests_are_bounded(server):
    answers = [open_request(server, firefox(i)).status for i in range(5)]
    assert answers == [200, 200, 200, 200, 429]


def test_each_origin_has_one_pending_request_the_newest(server):
    opened = [open_request(server).json() for _ in range(6)]
    listed = as_page(server, "GET", "/v1/pairing").json()["requests"]
    assert [r["id"] for r in listed] == [opened[-1]["id"]]
    assert collect(server, opened[0]).status == 404
    assert open_request(server, firefox(1)).status == 200


SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user, unlike a venv under /root
NOBODY = 65534
CLIENT = """
import http.client, json, sys
method, port, path, headers = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
c = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
c.request(method, path, headers=headers)
r = c.getresponse(); print(r.status, r.read().decode())
"""
needs_root = pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                                reason="needs root (to act as another user) and /usr/bin/python3")


def as_user(uid: int, method: str, port: int, path: str, headers: dict) -> tuple[int, dict]:
    """One request from a program of another user (a child process with that uid)."""
    done = subprocess.run([SYSTEM_PYTHON, "-c", CLIENT, method, str(port), path, json.dumps(headers)],
                          capture_output=True, text=True, timeout=30, user=uid, group=uid, cwd="/")
    status, body = done.stdout.split(" ", 1)
    return int(status), json.loads(body)


@needs_root
def test_another_local_user_can_neither_open_read_hold_nor_allow(server):
    """A program of another user can read the local page (and its key), but no pairing call of theirs is
    served: they cannot fill the slots, read the codes of the real extension's request, collect or allow it."""
    for _ in range(5):
        assert as_user(NOBODY, "POST", server.port, "/v1/pairing", EXTENSION_ORIGIN) == (403, {
            "error": "forbidden_peer", "message": ANY_MESSAGE})
    reply = open_request(server)
    assert reply.status == 200, reply  # the real extension still gets a slot
    opened = reply.json()
    key = {"X-Shield-Page-Key": page_key(server)}
    calls = [("GET", "/v1/pairing", key), ("POST", f"/v1/pairing/{opened['id']}/allow", key),
             ("POST", f"/v1/pairing/{opened['id']}/refuse", key),
             ("GET", f"/v1/pairing/{opened['id']}", {**EXTENSION_ORIGIN, "X-Shield-Pairing-Secret": opened["secret"]})]
    for method, path, headers in calls:
        status, body = as_user(NOBODY, method, server.port, path, headers)
        assert (status, body["error"]) == (403, "forbidden_peer"), (method, path, body)
        assert opened["code"] not in json.dumps(body)
    assert collect(server, opened).json() == {"status": "pending"}


@needs_root
def test_another_local_user_cannot_use_the_page_key(server):
    """The page key is in a page any account can load; from another account's program it opens nothing: no
    photo in the queue, no video job held, no health or pairing list."""
    key = {"X-Shield-Page-Key": page_key(server)}
    for method, path in [("GET", "/v1/health"), ("POST", "/v1/protect"), ("POST", "/v1/detect"),
                         ("POST", "/v1/video?more=1"), ("GET", "/v1/pairing")]:
        status, body = as_user(NOBODY, method, server.port, path, key)
        assert (status, body["error"]) == (403, "forbidden_peer"), (method, path, body)
    assert server.request("GET", "/v1/health", token=False, headers=key).status == 200  # the owner's own page


class _AnyMessage(str):
    def __eq__(self, other):
        return isinstance(other, str) and "Only the user running Photo Shield" in other


ANY_MESSAGE = _AnyMessage()


SERVER_AS = """
import encodings.ascii, encodings.idna, encodings.latin_1, encodings.utf_8  # the interpreter's own files may
import os, sys                                                              # not be readable by uid
from pathlib import Path
from waitress.server import create_server
from shield_server.server import pairing
from shield_server.server.app import ServerConfig, create_app
from shield_server.server.serve import SPARE_THREADS

folder, uid = Path(sys.argv[1]), int(sys.argv[2])
listener = create_server(lambda environ, start: [], host="127.0.0.1", port=0, threads=SPARE_THREADS + 6)
if uid != os.getuid():  # everything imported, the port bound: now the server's user is uid
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
config = ServerConfig(port=listener.effective_port, token_store=pairing.TokenStore(folder), detectors=["none"])
listener.application = create_app(config)
print(f"listening on http://127.0.0.1:{config.port}/", flush=True)
listener.run()
"""


def test_the_owner_check_compares_with_the_servers_own_user(tmp_path):
    """The server's user is not root: as root, the test runs the server as `nobody`, so the test's own
    requests (root's) come from another user and `nobody`'s from the same one. A check that let root through,
    or compared with anything but the server's own uid, fails here; run as another user the owner check is
    tested the same way (that user's requests are the same user's)."""
    import shutil
    import tempfile

    root = os.getuid() == 0 if hasattr(os, "getuid") else False
    if root and not os.path.exists(SYSTEM_PYTHON):
        pytest.skip("needs /usr/bin/python3 to act as the server's user")
    uid = NOBODY if root else os.getuid()
    folder = Path(tempfile.mkdtemp(prefix="shield-owner-"))
    os.chown(folder, uid, uid)
    process = subprocess.Popen([sys.executable, "-c", SERVER_AS, str(folder), str(uid)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1)), line
        port = port[0]
        same_user = (lambda method, path, headers: as_user(uid, method, port, path, headers)) if root else None
        if same_user is None:  # run as an ordinary user: this process is the server's user
            def same_user(method, path, headers):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                connection.request(method, path, headers=headers)
                answer = connection.getresponse()
                return answer.status, json.loads(answer.read())

        status, opened = same_user("POST", "/v1/pairing", EXTENSION_ORIGIN)
        assert status == 200, opened
        if root:  # this test process is root: another user than the server's
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("POST", "/v1/pairing", headers=EXTENSION_ORIGIN)
            answer = connection.getresponse()
            assert answer.status == 403 and json.loads(answer.read())["error"] == "forbidden_peer"
        token = (folder / "pairing-token").read_text().strip()
        status, listed = same_user("GET", "/v1/pairing", {"X-Shield-Token": token})
        assert status == 200 and [r["id"] for r in listed["requests"]] == [opened["id"]]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/connect")
        key = {"X-Shield-Page-Key": re.search(r'name="shield-page-key" content="([^"]+)"',
                                              connection.getresponse().read().decode()).group(1)}
        assert same_user("GET", "/v1/health", key)[0] == 200
        if root:  # the page key from another user's program
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/v1/health", headers=key)
            answer = connection.getresponse()
            assert answer.status == 403 and json.loads(answer.read())["error"] == "forbidden_peer"
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(folder, ignore_errors=True)
