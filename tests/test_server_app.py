"""In-process checks of what a real server cannot be made to do on demand: engine crashes, queue timing."""

import threading
import time

import pytest

from shield_server import pipeline, security
from shield_server.errors import ProtectionFailed
from shield_server.server import pairing
from shield_server.server.app import ServerConfig, create_app

PORT = 47321


@pytest.fixture
def client(tmp_path):
    tokens = pairing.TokenStore(tmp_path)
    app = create_app(ServerConfig(port=PORT, token_store=tokens, detectors=["stub"]))
    headers = {"Host": f"127.0.0.1:{PORT}", "X-Shield-Token": tokens.current()}
    return app.test_client(), headers


@pytest.mark.parametrize("failure, code", [(RuntimeError("model exploded"), "internal"),
                                           (MemoryError(), "internal"),
                                           (ProtectionFailed("a face was not fully replaced"), "protection_failed")])
def test_engine_failure_is_500_json_without_the_photo(client, monkeypatch, failure, code):
    def explode(data, options, *rest):  # the server also hands over its faces cache
        raise failure
    monkeypatch.setattr(pipeline, "protect", explode)
    test_client, headers = client
    photo = b"\x89PNG\r\n\x1a\n" + b"SECRET-PIXELS" * 100
    answer = test_client.post("/v1/protect", data=photo, headers=headers)
    assert answer.status_code == 500
    assert answer.json["error"] == code and answer.headers["Content-Type"] == "application/json"
    assert b"SECRET-PIXELS" not in answer.data and "model exploded" not in answer.json["message"]


def test_queue_refuses_at_once_when_full_and_times_out_waiters():
    admission = security.Admission(max_active=1, max_waiting=1, deadline_s=0.3)
    release = threading.Event()
    outcomes = []

    def hold():
        with admission.slot():
            release.wait(5)

    def wait_for_slot():
        start = time.monotonic()
        try:
            with admission.slot():
                outcomes.append("ran")
        except security.Busy as exc:
            outcomes.append((exc.status, time.monotonic() - start))

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.05)
    waiter = threading.Thread(target=wait_for_slot)
    waiter.start()
    time.sleep(0.05)
    with pytest.raises(security.Busy) as refused:
        with admission.slot():
            pass
    assert refused.value.status == 429
    waiter.join(5)
    assert len(outcomes) == 1 and outcomes[0][0] == 503 and 0.29 <= outcomes[0][1] < 2
    release.set()
    holder.join(5)
    with admission.slot():  # slots are given back after success and failure alike
        assert admission.stats.active == 1
    assert admission.stats.active == 0 and admission.stats.waiting == 0


def test_waiter_gets_the_slot_when_it_frees():
    admission = security.Admission(max_active=1, max_waiting=2, deadline_s=5)
    order = []

    def work(name, seconds):
        with admission.slot():
            order.append(name)
            time.sleep(seconds)
    threads = [threading.Thread(target=work, args=(n, 0.1)) for n in ("a", "b", "c")]
    for thread in threads:
        thread.start()
        time.sleep(0.02)
    for thread in threads:
        thread.join(5)
    assert sorted(order) == ["a", "b", "c"] and admission.stats.active == 0
