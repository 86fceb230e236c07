"""The link fetcher's defences, each against a hostile server on loopback (tests/fakecdn.py).

127.0.0.1 plays a public address (the policy's `address_ok` admits only it) and 127.0.0.2 plays
the internal network: a server there holds the "secret", and every test that could leak to it
checks that it was never asked. Names resolve through a resolver the test controls, so a name can
lie (answer differently the second time) while the sockets are real.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator

import pytest

from media.fetch import (
    Failed,
    Fetcher,
    Policy,
    Refused,
    Target,
    address_is_global,
    link_content_type_ok,
    plan,
)
from tests.fakecdn import PNG_HEAD, FakeCDN

pytestmark = pytest.mark.integration


class Resolver:
    """cdn.test -> the public server; internal.test -> the internal one; rebind.test answers the
    public address once, then the internal one (a DNS rebinding attack)."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host in ("cdn.test", "other.test"):
            return ["127.0.0.1"]
        if host == "internal.test":
            return ["127.0.0.2"]
        if host == "rebind.test":
            return ["127.0.0.1"] if self.lookups.count("rebind.test") == 1 else ["127.0.0.2"]
        if host in ("127.0.0.1", "127.0.0.2"):
            return [host]
        raise Failed("dns", host)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[FakeCDN, FakeCDN]]:
    public = FakeCDN("127.0.0.1")
    internal = FakeCDN("127.0.0.2", public.port)
    yield public, internal
    public.close()
    internal.close()


@pytest.fixture
def cdn(servers: tuple[FakeCDN, FakeCDN]) -> FakeCDN:
    public, _internal = servers
    for s in servers:
        s.hits.clear()
        s.hosts.clear()
        s.flaky_left = 0
    return public


@pytest.fixture
def internal(servers: tuple[FakeCDN, FakeCDN]) -> FakeCDN:
    return servers[1]


def policy(**kw: object) -> Policy:
    base: dict[str, object] = {"address_ok": lambda ip: ip == "127.0.0.1", "timeout": 5.0, "retry_wait": 0.01}
    base.update(kw)
    return Policy(**base)  # type: ignore[arg-type]


def fetcher(**kw: object) -> tuple[Fetcher, Resolver]:
    resolver = Resolver()
    return Fetcher(policy(**kw), resolver), resolver


def test_an_ordinary_image(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    got = f.fetch(f"http://cdn.test:{cdn.port}/image.png")
    assert got.body.startswith(PNG_HEAD) and got.content_type == "image/png" and got.redirects == ()
    assert cdn.hosts == [f"cdn.test:{cdn.port}"]  # the name travels in Host, the socket to the address


def test_a_link_without_scheme_is_http(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    assert f.fetch(f"cdn.test:{cdn.port}/image.png").body.startswith(PNG_HEAD)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://cdn.test/x.png", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("javascript:alert(1)", "bad-url"),
        ("http://cdn.test:99999/x", "bad-url"),
        ("http:///x", "bad-url"),
    ],
)
def test_only_http_and_https(url: str, reason: str) -> None:
    with pytest.raises(Refused) as e:
        plan(url, Resolver(), policy())
    assert e.value.reason == reason


def test_a_private_address_is_refused_before_connecting(cdn: FakeCDN) -> None:
    """The real check (no `address_ok`): loopback is not global, so nothing is sent at all."""
    f = Fetcher(Policy(timeout=5), lambda host, port: ["127.0.0.1"])
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/image.png")
    assert e.value.reason == "private-address"
    assert sum(cdn.hits.values()) == 0


def test_allow_private_lets_a_loopback_mirror_through(cdn: FakeCDN) -> None:
    f = Fetcher(Policy(timeout=5, allow_private=True))
    assert f.fetch(f"{cdn.url}/image.png").body.startswith(PNG_HEAD)


def test_the_next_checked_address_when_the_first_does_not_answer(cdn: FakeCDN) -> None:
    """A name with two addresses (IPv6 and IPv4, say) where the first is unreachable: the second
    checked address is used, and nothing unchecked."""
    ok = {"127.0.0.3", "127.0.0.1"}
    f = Fetcher(policy(address_ok=ok.__contains__), lambda host, port: ["127.0.0.3", "127.0.0.1"])
    assert f.fetch(f"http://two.test:{cdn.port}/image.png").body.startswith(PNG_HEAD)


def test_every_address_of_a_name_must_be_allowed() -> None:
    with pytest.raises(Refused):
        plan("http://both.test/", lambda h, p: ["127.0.0.1", "127.0.0.2"], policy())


def test_dns_rebinding_connects_to_the_checked_address(cdn: FakeCDN, internal: FakeCDN) -> None:
    f, resolver = fetcher()
    got = f.fetch(f"http://rebind.test:{cdn.port}/secret")
    assert resolver.lookups == ["rebind.test"]  # asked once: a second answer is never used
    assert cdn.hits["/secret"] == 1 and sum(internal.hits.values()) == 0
    assert got.body.startswith(PNG_HEAD)


def test_the_plan_names_the_address_it_checked() -> None:
    resolver = Resolver()
    target = plan("https://rebind.test/a?b=c", resolver, policy())
    assert target == Target("https://rebind.test/a?b=c", "https", "rebind.test", 443, "127.0.0.1", "/a?b=c", ())


def test_a_redirect_to_a_private_address_is_refused(cdn: FakeCDN, internal: FakeCDN) -> None:
    f, _ = fetcher()
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/redirect-private")
    assert e.value.reason == "private-address"
    assert sum(internal.hits.values()) == 0


def test_redirects_are_followed_and_recorded(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    got = f.fetch(f"http://cdn.test:{cdn.port}/redirect-good")
    assert got.redirects == (f"http://cdn.test:{cdn.port}/image.png",)
    assert got.url == f"http://cdn.test:{cdn.port}/redirect-good"


def test_at_most_five_redirects(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/redirect-loop")
    assert e.value.reason == "too-many-redirects"
    assert cdn.hits["/redirect-loop"] == 6


@pytest.mark.parametrize("path", ["/endless", "/chunked-endless"])
def test_an_endless_body_stops_at_the_cap(cdn: FakeCDN, path: str) -> None:
    f, _ = fetcher(max_bytes=1 << 20, timeout=20.0)
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}{path}")
    assert e.value.reason == "too-large"


def test_a_huge_declared_length_is_refused_before_reading(cdn: FakeCDN) -> None:
    """The server claims 1 GiB, sends 1000 bytes and waits: reading would run into the timeout."""
    f, _ = fetcher(timeout=2.0)
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/huge-claim")
    assert e.value.reason == "too-large"


def test_a_slow_drip_ends_at_the_one_deadline(cdn: FakeCDN) -> None:
    """A byte every 0.1 s: every read is quick, so only a deadline over the whole fetch ends it."""
    f, _ = fetcher(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(Failed) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/drip")
    assert e.value.reason == "timeout"
    assert time.monotonic() - started < 5


def test_a_head_dripped_a_byte_at_a_time_ends_at_the_one_deadline(cdn: FakeCDN) -> None:
    """The status line and headers a byte every 0.1 s (about 100 s in all): the deadline holds
    while the head is read, not only the body."""
    f, _ = fetcher(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(Failed) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/drip-head")
    assert e.value.reason == "timeout"
    assert time.monotonic() - started < 5


def test_a_body_shorter_than_declared_is_retried_then_fails(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    with pytest.raises(Failed) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/short-body")
    assert e.value.reason == "truncated"
    assert cdn.hits["/short-body"] == 4  # the try and 3 retries


def test_a_server_error_is_retried(cdn: FakeCDN) -> None:
    cdn.flaky_left = 2
    f, _ = fetcher()
    assert f.fetch(f"http://cdn.test:{cdn.port}/flaky").body.endswith(b"after a while")
    assert cdn.hits["/flaky"] == 3


def test_a_4xx_is_not_retried(cdn: FakeCDN) -> None:
    f, _ = fetcher()
    with pytest.raises(Failed) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/gone")
    assert (e.value.reason, e.value.status, cdn.hits["/gone"]) == ("http-4xx", 404, 1)


def test_a_refusal_is_not_retried(cdn: FakeCDN) -> None:
    f, _ = fetcher(content_type_ok=link_content_type_ok)
    with pytest.raises(Refused):
        f.fetch(f"http://cdn.test:{cdn.port}/html-page")
    assert cdn.hits["/html-page"] == 1


@pytest.mark.parametrize(("path", "reason"), [("/html-page", "content-type"), ("/no-type", "content-type")])
def test_content_types(cdn: FakeCDN, path: str, reason: str) -> None:
    f, _ = fetcher(content_type_ok=link_content_type_ok)
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}{path}")
    assert e.value.reason == reason


def test_an_html_page_sent_as_an_image_is_refused(cdn: FakeCDN) -> None:
    f, _ = fetcher(content_type_ok=link_content_type_ok)
    with pytest.raises(Refused) as e:
        f.fetch(f"http://cdn.test:{cdn.port}/lying-type")
    assert e.value.reason == "not-an-image"


def test_link_content_types() -> None:
    assert link_content_type_ok("image/png")
    assert link_content_type_ok("video/mp4; codecs=x")
    assert link_content_type_ok("application/pdf")
    assert not link_content_type_ok("text/html")
    assert not link_content_type_ok("application/octet-stream")


@pytest.mark.parametrize(
    ("ip", "ok"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # the cloud's metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("64:ff9b::10.0.0.1", False),  # NAT64 of a private address
        ("64:ff9b::127.0.0.1", False),
        ("64:ff9b::8.8.8.8", True),  # NAT64 of a public one
        ("64:ff9b:1::10.0.0.1", False),  # local-use NAT64
        ("64:ff9b:1::a00:1", False),
        ("2002:a00:1::", False),  # 6to4 of 10.0.0.1
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("2002:a9fe:a9fe::", False),  # 6to4 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo, client 10.0.0.1
        ("2001:0:808:808:0:f5ff:f7f7:f7f7", True),  # Teredo, client and server 8.8.8.8
        ("::10.0.0.1", False),  # IPv4-compatible
        ("::127.0.0.1", False),
        ("::a9fe:a9fe", False),
        ("::", False),
        ("::ffff:0:10.0.0.1", False),  # SIIT
        ("::ffff:0:127.0.0.1", False),
        ("fec0::1", False),  # site-local
        ("fd00::1", False),  # unique-local
        ("ff02::1", False),  # multicast
        ("2001:db8::1", False),  # documentation
        ("3fff::1", False),
        ("2001:2::1", False),  # benchmarking
        ("100::1", False),  # discard-only
        ("4000::1", False),  # outside global unicast
        ("192.0.2.1", False),  # documentation
        ("198.51.100.1", False),
        ("203.0.113.1", False),
        ("198.18.0.1", False),  # benchmarking
        ("198.19.255.255", False),
        ("100.127.255.255", False),  # carrier-grade NAT, its last address
        ("192.0.0.8", False),  # IETF protocol assignments
        ("240.0.0.1", False),  # reserved
        ("255.255.255.255", False),
        ("239.255.255.250", False),  # multicast
        ("0.1.2.3", False),
        ("1.1.1.1", True),
        ("not an ip", False),
    ],
)
def test_address_is_global(ip: str, ok: bool) -> None:
    assert address_is_global(ip) is ok


@pytest.fixture(scope="module")
def tls_cdn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeCDN, ssl.SSLContext]]:
    """An HTTPS CDN on 127.0.0.1 whose certificate names cdn.test, and a client context trusting it."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    name = ["-subj", "/CN=cdn.test", "-addext", "subjectAltName=DNS:cdn.test"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), *name],
        check=True,
        capture_output=True,
    )
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    with FakeCDN(tls=server_side) as cdn:
        yield cdn, client


def test_https_to_the_checked_address_verifies_the_name(tls_cdn: tuple[FakeCDN, ssl.SSLContext]) -> None:
    """The socket goes to the checked address; SNI and the certificate check use the link's name."""
    cdn, client = tls_cdn
    f = Fetcher(policy(), Resolver(), ssl_context=client)
    assert f.fetch(f"https://cdn.test:{cdn.port}/image.png").body.startswith(PNG_HEAD)
    with pytest.raises(Failed) as e:  # same address, another name: the certificate does not match
        f.fetch(f"https://other.test:{cdn.port}/image.png")
    assert e.value.reason == "tls"
