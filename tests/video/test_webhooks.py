from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hazardvision.errors import InvalidWebhook
from hazardvision.video.webhook_targets import WebhookTargets, parse_networks
from hazardvision.video.webhooks import DeliveryStatus, WebhookSender, WebhookSettings, verify_signature

SECRET = "s3cret-shared-with-the-receiver"
WAIT = 30.0  # a safety net against hangs, never a timing assertion
# The receivers of these tests listen on 127.0.0.1, which webhooks reach only when an admin allows it.
FAST = WebhookSettings(base_delay_seconds=0.01, max_delay_seconds=0.05, timeout_seconds=WAIT,
                       allowed_networks=["127.0.0.0/8"])
DEFAULT = FAST.model_copy(update={"allowed_networks": []})


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that answers with scripted status codes (then 200)."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def wait_for_request(self) -> None:
        assert self.arrived.acquire(timeout=WAIT), "the receiver got no request"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    state.release.set()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                state.requests.append(Received(dict(self.headers.items()), body))
                status = state.statuses.pop(0) if state.statuses else 200
            state.arrived.release()
            state.release.wait(WAIT)
            with lock:
                state.events.append("receiver answered")
            self.send_response(status)
            if status == 302:
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_webhook_sender_signs_deliveries_so_the_receiver_can_verify(receiver):
    payload = {"class_name": "no_helmet", "camera_id": "gate", "box": [1.5, 2, 3, 4], "note": "安全帽"}
    sender = WebhookSender(FAST)
    delivery_id = sender.submit(receiver.url, SECRET, payload)
    assert sender.close(WAIT) == 0

    [request] = receiver.requests
    headers, body = request.headers, request.body
    assert body == json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    assert json.loads(body) == payload
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Hazardvision-Delivery"] == delivery_id
    timestamp = headers["X-Hazardvision-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Hazardvision-Signature"], f"sha256={expected}")
    assert verify_signature(SECRET, timestamp, body, headers["X-Hazardvision-Signature"], tolerance_seconds=300)
    assert sender.stats().delivered == 1
    [outcome] = sender.recent()
    assert (outcome.delivery_id, outcome.status, outcome.attempts, outcome.http_status) == (
        delivery_id, DeliveryStatus.DELIVERED, 1, 200
    )


@pytest.mark.parametrize(
    ("change", "tolerance"),
    [("body", None), ("secret", None), ("timestamp", None), ("signature", None), ("stale", 300.0)],
)
def test_verify_signature_refuses_tampering(change, tolerance):
    body, timestamp = b'{"a":1}', "1700000000"
    expected = hmac.new(SECRET.encode(), f"{timestamp}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    signature = f"sha256={expected}"
    args = {"secret": SECRET, "timestamp": timestamp, "body": body, "signature": signature}
    assert verify_signature(**args, tolerance_seconds=300, now=1700000100)
    tampered = args | {
        "body": {"body": b'{"a":2}'},
        "secret": {"secret": "guess"},
        "timestamp": {"timestamp": "1700000001"},
        "signature": {"signature": "sha256=" + "0" * 64},
        "stale": {},
    }[change]
    assert not verify_signature(**tampered, tolerance_seconds=tolerance, now=1700000000 + 3600)


@pytest.mark.parametrize("failure", [500, 503, 429])
def test_webhook_sender_retries_until_the_receiver_succeeds(receiver, failure):
    receiver.statuses = [failure, failure, 200]
    sender = WebhookSender(FAST)
    sender.submit(receiver.url, SECRET, {"n": 1})
    sender.close(WAIT)

    assert len(receiver.requests) == 3
    assert len({r.headers["X-Hazardvision-Delivery"] for r in receiver.requests}) == 1
    assert {r.body for r in receiver.requests} == {b'{"n":1}'}
    stats = sender.stats()
    assert (stats.delivered, stats.failed, stats.retries, stats.pending) == (1, 0, 2, 0)
    assert [(o.status, o.attempts) for o in sender.recent()] == [(DeliveryStatus.DELIVERED, 3)]


@pytest.mark.parametrize("answer", [400, 401, 404, 302])
def test_webhook_sender_does_not_retry_client_errors_or_redirects(receiver, answer):
    receiver.statuses = [answer]
    sender = WebhookSender(FAST)
    sender.submit(receiver.url, SECRET, {"n": 1})
    sender.close(WAIT)

    assert len(receiver.requests) == 1
    stats = sender.stats()
    assert (stats.delivered, stats.failed, stats.retries) == (0, 1, 0)
    [outcome] = sender.recent()
    assert (outcome.status, outcome.http_status) == (DeliveryStatus.FAILED, answer)


def test_webhook_sender_gives_up_after_max_attempts_on_connection_errors():
    sender = WebhookSender(FAST.model_copy(update={"max_attempts": 3}))
    sender.submit(closed_port_url() + "?token=abc", SECRET, {"n": 1})
    sender.close(WAIT)

    stats = sender.stats()
    assert (stats.delivered, stats.failed, stats.retries) == (0, 1, 2)
    [outcome] = sender.recent()
    assert outcome.attempts == 3
    assert outcome.http_status is None
    assert outcome.error
    assert "token" not in outcome.url


def test_webhook_sender_submit_returns_while_the_receiver_hangs(receiver):
    receiver.release.clear()  # the receiver holds every request until released
    sender = WebhookSender(FAST)
    for n in range(3):
        sender.submit(receiver.url, SECRET, {"n": n})
    receiver.events.append("submit returned")
    receiver.wait_for_request()
    receiver.release.set()
    sender.close(WAIT)

    assert receiver.events[0] == "submit returned"
    assert receiver.events.count("receiver answered") == 3
    assert sender.stats().delivered == 3


def test_webhook_sender_full_queue_drops_the_oldest(receiver):
    receiver.release.clear()
    sender = WebhookSender(FAST.model_copy(update={"workers": 1, "queue_size": 2}))
    sender.submit(receiver.url, SECRET, {"n": 0})
    receiver.wait_for_request()  # the only worker is now busy with delivery 0
    ids = [sender.submit(receiver.url, SECRET, {"n": n}) for n in (1, 2, 3)]

    stats = sender.stats()
    assert (stats.dropped, stats.pending) == (1, 3)
    receiver.release.set()
    sender.close(WAIT)

    assert [json.loads(r.body)["n"] for r in receiver.requests] == [0, 2, 3]
    dropped = [o for o in sender.recent() if o.status is DeliveryStatus.DROPPED]
    assert [o.delivery_id for o in dropped] == [ids[0]]
    assert sender.stats().delivered == 3


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http://", "http://host:port/"]
)
def test_webhook_sender_refuses_urls_that_are_not_http(url):
    sender = WebhookSender(FAST)
    with pytest.raises(InvalidWebhook, match="URL"):
        sender.submit(url, SECRET, {"n": 1})
    sender.close(WAIT)
    assert sender.stats().dropped == 0


def test_webhook_sender_refuses_an_empty_secret():
    with WebhookSender(FAST) as sender, pytest.raises(InvalidWebhook, match="secret"):
        sender.submit("https://example.com/hook", "", {"n": 1})


def test_webhook_sender_refuses_submissions_after_close():
    sender = WebhookSender(FAST)
    sender.close(WAIT)
    with pytest.raises(RuntimeError, match="closed"):
        sender.submit("https://example.com/hook", SECRET, {"n": 1})


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.8.9.10", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.100.100.200",
    "0.0.0.0", "224.0.0.1", "240.0.0.1", "[::1]", "[fd00:ec2::254]", "[fe80::1]", "[::ffff:127.0.0.1]", "[::]",
])
def test_webhook_sender_refuses_addresses_that_are_not_public_by_default(host):
    with WebhookSender(DEFAULT) as sender, pytest.raises(InvalidWebhook, match="public addresses only"):
        sender.submit(f"http://{host}:8080/hook", SECRET, {"n": 1})


def test_webhook_sender_refuses_credentials_in_the_url():
    with WebhookSender(FAST) as sender, pytest.raises(InvalidWebhook, match="credentials"):
        sender.submit("https://ops:hunter2@hooks.example.test/x", SECRET, {"n": 1})


@pytest.mark.parametrize(("resolved", "allowed", "refused"), [
    (["127.0.0.1"], [], True),
    (["93.184.215.14", "10.0.0.7"], [], True),  # one internal address among public ones is enough to refuse
    (["93.184.215.14"], [], False),
    (["10.0.0.7"], ["10.0.0.0/8"], False),
    (["fd00:ec2::254"], ["10.0.0.0/8"], True),
])
def test_webhook_targets_check_what_a_name_resolves_to(resolved, allowed, refused):
    targets = WebhookTargets(parse_networks(allowed), resolver=lambda host, port: resolved)
    if refused:
        with pytest.raises(InvalidWebhook, match="resolves to"):
            targets.check_config("https://hooks.example.test/x")
    else:
        targets.check_config("https://hooks.example.test/x")


def test_webhook_targets_localhost_is_loopback_and_an_unresolved_name_waits_for_delivery():
    def unresolved(host, port):
        raise OSError("no such name")
    targets = WebhookTargets(resolver=unresolved)
    with pytest.raises(InvalidWebhook, match="loopback"):
        targets.check_config("http://localhost:8000/x")
    with pytest.raises(InvalidWebhook, match="loopback"):
        targets.check_config("http://api.localhost./x")
    targets.check_config("https://not-yet.example.test/x")  # each delivery resolves and checks it


def test_webhook_sender_refuses_a_name_rebound_to_loopback_at_delivery(receiver):
    # Public when the camera was configured, loopback when the alert is sent: nothing is sent.
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    sender = WebhookSender(DEFAULT, resolver=lambda host, _port: ["127.0.0.1"])
    sender.submit(f"http://rebound.example.test:{port}/hooks/alerts", SECRET, {"n": 1})
    sender.close(WAIT)

    assert receiver.requests == []
    stats = sender.stats()
    assert (stats.refused, stats.failed, stats.retries, stats.delivered) == (1, 0, 0, 0)
    [outcome] = sender.recent()
    assert outcome.status is DeliveryStatus.REFUSED and "loopback" in (outcome.error or "")


def test_webhook_sender_connects_to_the_checked_address_with_the_urls_host(receiver):
    port = int(receiver.url.rsplit(":", 1)[1].split("/")[0])
    asked = []

    def resolver(host, resolved_port):
        asked.append((host, resolved_port))
        return ["127.0.0.1"]
    sender = WebhookSender(FAST, resolver=resolver)
    sender.submit(f"http://hooks.example.test:{port}/hooks/alerts?site=3", SECRET, {"n": 1})
    sender.close(WAIT)

    assert asked == [("hooks.example.test", port)]
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.example.test:{port}"
    assert sender.stats().delivered == 1


def self_signed(folder, name: str):
    """A certificate for `name` and its key, as PEM files (the receiver's, and the CA the sender trusts)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.mark.parametrize(("host", "delivered"), [("hooks.example.test", True), ("other.example.test", False)])
def test_webhook_sender_checks_https_certificates_against_the_urls_host_not_the_address(tmp_path, host, delivered):
    cert, key = self_signed(tmp_path, "hooks.example.test")
    arrived = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            arrived.append((self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        sender = WebhookSender(FAST.model_copy(update={"max_attempts": 1}), resolver=lambda h, p: ["127.0.0.1"],
                               tls=ssl.create_default_context(cafile=str(cert)))
        sender.submit(f"https://{host}:{port}/hooks", SECRET, {"n": 1})
        sender.close(WAIT)
    finally:
        server.shutdown()
        server.server_close()
    [outcome] = sender.recent()
    if delivered:
        assert outcome.status is DeliveryStatus.DELIVERED and arrived == [(f"{host}:{port}", b'{"n":1}')]
    else:  # the certificate names hooks.example.test, not the URL's host: nothing sent
        assert outcome.status is DeliveryStatus.FAILED and "certificate" in (outcome.error or "").lower()
        assert arrived == []


def test_webhook_sender_tells_the_failure_listener_of_failed_and_dropped_deliveries(receiver):
    told: list[tuple[str, DeliveryStatus, bytes]] = []

    def listener(outcome, body):
        told.append((outcome.delivery_id, outcome.status, body))

    failed = WebhookSender(FAST.model_copy(update={"max_attempts": 2}))
    failed_id = failed.submit(closed_port_url(), SECRET, {"n": 1}, on_failure=listener)
    failed.close(WAIT)
    assert told == [(failed_id, DeliveryStatus.FAILED, b'{"n":1}')]

    told.clear()
    receiver.release.clear()
    sender = WebhookSender(FAST.model_copy(update={"workers": 1, "queue_size": 1}))
    sender.submit(receiver.url, SECRET, {"n": 0}, on_failure=listener)
    receiver.wait_for_request()  # the only worker is busy with delivery 0
    dropped_id = sender.submit(receiver.url, SECRET, {"n": 1}, on_failure=listener)
    sender.submit(receiver.url, SECRET, {"n": 2}, on_failure=listener)  # drops delivery 1
    receiver.release.set()
    sender.close(WAIT)
    assert told == [(dropped_id, DeliveryStatus.DROPPED, b'{"n":1}')]


def test_webhook_sender_send_now_delivers_once_under_the_given_id(receiver):
    sender = WebhookSender(FAST)
    outcome = sender.send_now(receiver.url, SECRET, b'{"n":7}', "a" * 32)
    sender.close(WAIT)
    assert (outcome.status, outcome.attempts, outcome.http_status) == (DeliveryStatus.DELIVERED, 1, 200)
    [request] = receiver.requests
    assert request.body == b'{"n":7}'
