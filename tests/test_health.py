"""/livez, /readyz (store ping, draining on SIGTERM) and the names the gateway keeps for itself."""

from __future__ import annotations

import signal
import socket
import threading
import time

import httpx
import pytest

from gateway.observe import metrics
from tests.conftest import sandbox_provider, write_config
from tests.operations import Served, free_port
from tests.stores import POSTGRES_URL, REDIS_URL, TEST_KEY, require

BALANCE = {"identifier": {"number": "6006491111111111", "pin": "480163"}}


def test_livez_and_readyz_when_all_is_well(sandbox, tmp_path):
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    with Served(config, tmp_path / "serve.log") as gw:
        live = httpx.get(gw.url + "/livez")
        ready = httpx.get(gw.url + "/readyz")
        assert httpx.get(gw.url + "/health").json()["providers"] == ["sandbox"]  # as before
    assert live.status_code == 200 and live.json() == {"status": "ok", "version": metrics.version()}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "version": metrics.version(),
                            "checks": {"plan": "ok", "store": {"status": "ok", "kind": "sqlite"}, "draining": False,
                                       "breakers": {"sandbox": "closed"}}}
    assert ready.headers["cache-control"] == "no-store"


class Proxy:
    """A TCP relay to a real service, which the test can cut and restore on the same port."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.conns: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.start()

    def start(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen()
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        assert self.listener is not None
        self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
        self.listener.close()
        for s in self.conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        self.conns.clear()


def test_readyz_is_503_while_the_store_is_unreachable(sandbox, tmp_path):
    require("redis")
    proxy = Proxy(("127.0.0.1", 6379))
    db = REDIS_URL.rsplit("/", 1)[-1]
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": f"redis://127.0.0.1:{proxy.port}/{db}",
        "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with Served(config, tmp_path / "serve.log", env={"GATEWAY_TEST_IDEMPOTENCY_KEY": TEST_KEY}) as gw:
        assert httpx.get(gw.url + "/readyz").status_code == 200
        proxy.cut()
        down = httpx.get(gw.url + "/readyz", timeout=30)
        live = httpx.get(gw.url + "/livez")
        proxy.start()
        up = httpx.get(gw.url + "/readyz", timeout=30)
    assert down.status_code == 503
    assert down.json()["status"] == "not_ready"
    assert down.json()["checks"]["store"] == {"status": "unreachable", "kind": "redis"}
    assert live.status_code == 200  # alive: a restart would not bring the store back
    assert up.status_code == 200, up.text


def test_readyz_never_shows_the_store_url(sandbox, tmp_path):
    require("postgres")
    # The local server trusts loopback, so it ignores the password; the gateway must never echo it.
    url = POSTGRES_URL.replace("postgres@", "postgres:pw-Never-Shown-4242@", 1)
    assert "pw-Never-Shown-4242" in url
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)}, idempotency={
        "store": url, "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}]})
    with Served(config, tmp_path / "serve.log", env={"GATEWAY_TEST_IDEMPOTENCY_KEY": TEST_KEY}) as gw:
        ready = httpx.get(gw.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store"] == {"status": "ok", "kind": "postgresql"}
    assert "Never-Shown" not in ready.text and "127.0.0.1" not in ready.text


def test_sigterm_drains_readyz_first_then_stops(sandbox, tmp_path):
    """On SIGTERM: /readyz turns 503 at once while webhooks are still served; then a clean exit."""
    config = write_config(tmp_path, {"sandbox": sandbox_provider(sandbox)})
    gw = Served(config, tmp_path / "serve.log", "--drain-delay", "5")
    try:
        assert httpx.get(gw.url + "/readyz").status_code == 200
        gw.proc.send_signal(signal.SIGTERM)
        ready = None
        for _ in range(100):  # the signal is handled within moments; bounded wait for it
            ready = httpx.get(gw.url + "/readyz", headers={"connection": "close"})
            if ready.status_code == 503:
                break
            time.sleep(0.02)
        assert ready is not None and ready.status_code == 503, ready and ready.text
        assert ready.json()["checks"]["draining"] is True
        # Still accepting: a load balancer that has not noticed yet loses nothing.
        assert httpx.post(gw.url + "/sandbox/gift_card/balance", json=BALANCE).status_code == 200
        assert httpx.get(gw.url + "/livez").status_code == 200
        assert gw.proc.wait(60) == 0
    finally:
        gw.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(gw.url + "/livez")
