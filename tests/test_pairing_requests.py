"""One-click pairing against a real server: the extension asks, the same user allows it in the local page,
the extension (and only it) collects the token. docs/SECURITY.md, "One-click pairing"."""

import json
import os
import re
import subprocess

import pytest

from server_process import start_server

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
    wrong = collect(server, opened, secret=opened["secret"][:-2] + "xx")
    assert wrong.status == 404 and server.token.encode() not in wrong.body


def test_listing_and_allowing_need_the_page_key_or_token(server):
    opened = open_request(server).json()
    assert server.request("GET", "/v1/pairing", token=False).status == 401
    refused = server.request("POST", f"/v1/pairing/{opened['id']}/allow", token=False,
                             headers={"X-Shield-Page-Key": "not-the-key"})
    assert refused.status == 401
    assert collect(server, opened).json() == {"status": "pending"}


def test_open_requests_are_bounded(server):
    answers = [open_request(server).status for _ in range(5)]
    assert answers == [200, 200, 200, 200, 429]


SYSTEM_PYTHON = "/usr/bin/python3"  # readable by every user, unlike a venv under /root


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0 or not os.path.exists(SYSTEM_PYTHON),
                    reason="needs root (to act as another user) and /usr/bin/python3")
def test_another_local_user_cannot_allow_a_request(server):
    """A program of another user can read the local page (and its key) but cannot allow its own request."""
    opened = open_request(server).json()
    client = (
        "import http.client, sys\n"
        "c = http.client.HTTPConnection('127.0.0.1', int(sys.argv[1]), timeout=10)\n"
        "c.request('POST', sys.argv[2], headers={'X-Shield-Page-Key': sys.argv[3]})\n"
        "r = c.getresponse(); print(r.status, r.read().decode())\n")
    done = subprocess.run([SYSTEM_PYTHON, "-c", client, str(server.port), f"/v1/pairing/{opened['id']}/allow",
                           page_key(server)], capture_output=True, text=True, timeout=30,
                          user=65534, group=65534, cwd="/")
    status, body = done.stdout.split(" ", 1)
    assert status == "403" and json.loads(body)["error"] == "forbidden_peer", done
    assert collect(server, opened).json() == {"status": "pending"}
