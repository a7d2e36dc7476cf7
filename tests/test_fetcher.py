"""The fetcher against real HTTP on loopback (pytest-httpserver, plus raw sockets where HTTP must misbehave)."""

import asyncio
import email.utils
import gzip
import socket
import threading
import time
import tracemalloc
import zlib

import brotli
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon.errors import ConfigError
from daemon.fetch.client import AddressPolicy, Fetcher, FixtureTransport, Limits, Validators

LOOPBACK = ["127.0.0.0/8", "::1/128"]
BOMB_SIZE = 50 * 1024 * 1024


def fetch(url, validators=None, *, limits=Limits(), allow=LOOPBACK, **kwargs):  # noqa: B008 - Limits is frozen
    async def go():
        async with Fetcher(limits, allow_networks=allow, **kwargs) as fetcher:
            return await fetcher.fetch(url, validators)

    return asyncio.run(go())


def fetch_many(urls, *, limits, allow=LOOPBACK):
    async def go():
        async with Fetcher(limits, allow_networks=allow) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(url) for url in urls))

    return asyncio.run(go())


class RawServer:
    """A loopback TCP server whose handler writes whatever bytes it likes: for responses HTTP servers won't send."""

    def __init__(self, handler, *, read_request=True):
        self.handler = handler
        self.read_request = read_request
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            try:
                if self.read_request:
                    read_request(conn)
                self.handler(conn)
            except OSError:
                pass  # the client gave up, as the tests intend

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.sock.close()


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def compressed(data: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(data)
    if coding == "br":
        return brotli.compress(data)
    if coding == "deflate":
        return zlib.compress(data)
    raise ValueError(coding)


# --- conditional GET ---------------------------------------------------------------------------------------------


def test_etag_round_trip(httpserver):
    def handler(request: Request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Response(status=304, headers={"ETag": '"v1"'})
        return Response(b"<rss/>", headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    httpserver.expect_request("/feed").respond_with_handler(handler)
    first = fetch(httpserver.url_for("/feed"))
    assert first.ok and first.status == 200 and first.content == b"<rss/>" and first.etag == '"v1"'
    assert not first.not_modified
    assert first.headers["content-type"] == "application/rss+xml"

    second = fetch(httpserver.url_for("/feed"), Validators(etag=first.etag))
    assert second.not_modified and second.status == 304 and second.error_kind is None
    assert second.content is None and second.etag == '"v1"'


def test_last_modified_round_trip(httpserver):
    stamp = "Thu, 11 Apr 2024 08:00:00 GMT"

    def handler(request: Request):
        if request.headers.get("If-Modified-Since") == stamp:
            return Response(status=304)  # no validators repeated: the stored ones must survive
        return Response(b"<feed/>", headers={"Last-Modified": stamp})

    httpserver.expect_request("/atom").respond_with_handler(handler)
    first = fetch(httpserver.url_for("/atom"))
    assert first.content == b"<feed/>" and first.last_modified == stamp and first.etag is None

    second = fetch(httpserver.url_for("/atom"), Validators(last_modified=first.last_modified))
    assert second.not_modified and second.content is None and second.last_modified == stamp


# --- redirects ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "permanent"),
    [
        ([301], True),
        ([308], True),
        ([302], False),
        ([307], False),
        ([301, 302], False),
        ([302, 301], False),
        ([301, 308], True),
    ],
)
def test_permanent_url_only_when_every_hop_is_permanent(httpserver, codes, permanent):
    for hop, code in enumerate(codes):
        httpserver.expect_request(f"/hop{hop}").respond_with_data(
            "", status=code, headers={"Location": f"/hop{hop + 1}"}
        )
    httpserver.expect_request(f"/hop{len(codes)}").respond_with_data("moved here")
    result = fetch(httpserver.url_for("/hop0"))
    final = httpserver.url_for(f"/hop{len(codes)}")
    assert result.ok and result.content == b"moved here"
    assert result.url == httpserver.url_for("/hop0") and result.final_url == final
    assert result.permanent_url == (final if permanent else None)


def test_no_redirect_means_no_permanent_url(httpserver):
    httpserver.expect_request("/plain").respond_with_data("x")
    result = fetch(httpserver.url_for("/plain"))
    assert result.permanent_url is None and result.final_url == result.url


def test_permanent_redirect_to_an_error_keeps_the_old_url(httpserver):
    httpserver.expect_request("/old").respond_with_data("", status=301, headers={"Location": "/broken"})
    httpserver.expect_request("/broken").respond_with_data("", status=404)
    result = fetch(httpserver.url_for("/old"))
    assert result.error_kind == "http_error" and result.status == 404 and result.permanent_url is None


def test_redirect_limit(httpserver):
    httpserver.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    result = fetch(httpserver.url_for("/loop"), limits=Limits(max_redirects=3))
    assert result.error_kind == "too_many_redirects" and "more than 3 redirects" in result.error
    assert len(httpserver.log) == 4  # the first request and three followed hops


def test_redirect_to_a_non_http_scheme_is_a_bad_url(httpserver):
    httpserver.expect_request("/ftp").respond_with_data("", status=301, headers={"Location": "ftp://example.com/f"})
    result = fetch(httpserver.url_for("/ftp"))
    assert result.error_kind == "bad_url" and "ftp://example.com/f" in result.error


@pytest.mark.parametrize("url", ["ftp://example.com/feed", "file:///etc/passwd", "example.com/feed", "http://"])
def test_bad_urls(url):
    result = fetch(url)
    assert result.error_kind == "bad_url" and result.status is None
    assert url in result.error and "\n" not in result.error


# --- error statuses -----------------------------------------------------------------------------------------------


def test_410_is_gone(httpserver):
    httpserver.expect_request("/gone").respond_with_data("bye", status=410)
    result = fetch(httpserver.url_for("/gone"))
    assert result.error_kind == "gone" and result.status == 410 and result.content is None
    assert httpserver.url_for("/gone") in result.error and "410" in result.error


def test_other_4xx_and_5xx_are_http_errors(httpserver):
    httpserver.expect_request("/missing").respond_with_data("", status=404)
    httpserver.expect_request("/broken").respond_with_data("", status=500)
    assert fetch(httpserver.url_for("/missing")).error_kind == "http_error"
    assert fetch(httpserver.url_for("/broken")).error_kind == "http_error"


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "unavailable")])
def test_retry_after_in_seconds(httpserver, status, kind):
    httpserver.expect_request("/busy").respond_with_data("", status=status, headers={"Retry-After": "120"})
    result = fetch(httpserver.url_for("/busy"))
    assert result.error_kind == kind and result.status == status and result.retry_after == 120.0
    assert "retry after 120 s" in result.error


@pytest.mark.parametrize(("status", "kind"), [(429, "rate_limited"), (503, "unavailable")])
def test_retry_after_as_http_date(httpserver, status, kind):
    when = email.utils.formatdate(time.time() + 600, usegmt=True)
    httpserver.expect_request("/busy").respond_with_data("", status=status, headers={"Retry-After": when})
    result = fetch(httpserver.url_for("/busy"))
    assert result.error_kind == kind
    assert 500 < result.retry_after <= 600  # whole seconds on the wire, so a little under 600


def test_unparseable_retry_after_is_none(httpserver):
    httpserver.expect_request("/busy").respond_with_data("", status=429, headers={"Retry-After": "soon"})
    result = fetch(httpserver.url_for("/busy"))
    assert result.error_kind == "rate_limited" and result.retry_after is None


# --- time and size limits -----------------------------------------------------------------------------------------


def test_slow_server_hits_the_time_limit(httpserver):
    release = threading.Event()

    def handler(request):
        release.wait(10)  # answers only after the client has given up
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(handler)
    try:
        result = fetch(httpserver.url_for("/slow"), limits=Limits(timeout=0.5))
    finally:
        release.set()
    assert result.error_kind == "timeout" and result.status is None and "0.5 s" in result.error


def test_slow_drip_body_hits_the_whole_request_deadline():
    # One byte every 0.2 s never trips a per-read timeout; only a deadline on the whole exchange stops it.
    def drip(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n")
        for _ in range(100):
            conn.sendall(b"x")
            time.sleep(0.2)  # the server's pace is the case under test: a slow server, not a wait for the client

    with RawServer(drip) as server:
        result = fetch(server.url, limits=Limits(timeout=1.0))
    assert result.error_kind == "timeout" and result.content is None


def test_declared_length_over_the_cap_is_refused_early(httpserver):
    httpserver.expect_request("/big").respond_with_data(b"a" * 5000)
    result = fetch(httpserver.url_for("/big"), limits=Limits(max_bytes=1000))
    assert result.error_kind == "too_large" and "5000 bytes" in result.error and result.content is None


def test_undeclared_length_over_the_cap_stops_while_streaming():
    def close_delimited(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        for _ in range(50):
            conn.sendall(b"b" * 1000)

    with RawServer(close_delimited) as server:
        assert fetch(server.url, limits=Limits(max_bytes=20_000)).error_kind == "too_large"
        whole = fetch(server.url, limits=Limits(max_bytes=50_000))
    assert whole.ok and whole.content == b"b" * 50_000  # exactly at the cap is allowed


@pytest.fixture(scope="module")
def bombs():
    zeros = b"\0" * (1 << 20)
    gz = zlib.compressobj(9, zlib.DEFLATED, 31)
    gz_body = b"".join(gz.compress(zeros) for _ in range(BOMB_SIZE >> 20)) + gz.flush()
    br = brotli.Compressor(quality=5)
    br_body = b"".join(br.process(zeros) for _ in range(BOMB_SIZE >> 20)) + br.finish()
    return {"gzip": gz_body, "br": br_body}


def respond(body: bytes, headers: str = ""):
    def handler(conn):
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{headers}\r\n"
        conn.sendall(head.encode() + body)

    return handler


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_compression_bomb_stops_at_the_cap_with_bounded_memory(bombs, coding):
    body = bombs[coding]
    assert len(body) < 100_000  # small on the wire, 50 MB decoded
    cap = 1024 * 1024

    async def go(bomb_url, warm_up_url):
        async with Fetcher(Limits(max_bytes=cap), allow_networks=LOOPBACK) as fetcher:
            await fetcher.fetch(warm_up_url)  # lazy imports and connection setup are not the body's memory
            tracemalloc.reset_peak()
            result = await fetcher.fetch(bomb_url)
            return result, tracemalloc.get_traced_memory()[1]

    # Plain socket servers: a full HTTP server in the same process would add its own allocations to the peak.
    with RawServer(respond(body, f"Content-Encoding: {coding}\r\n")) as bomb, RawServer(respond(b"ok")) as warm_up:
        tracemalloc.start()
        try:
            result, peak = asyncio.run(go(bomb.url, warm_up.url))
        finally:
            tracemalloc.stop()
    assert result.error_kind == "too_large" and result.content is None
    assert peak < 4 * cap, f"peak {peak} bytes while decoding a bomb capped at {cap}"


@pytest.mark.parametrize("coding", ["gzip", "br", "deflate"])
def test_compressed_bodies_are_decoded(httpserver, coding):
    text = "Zhao Leji arrived in Pyongyang. " * 200
    httpserver.expect_request("/enc").respond_with_data(
        compressed(text.encode(), coding), headers={"Content-Encoding": coding}
    )
    result = fetch(httpserver.url_for("/enc"))
    assert result.ok and result.content == text.encode()
    assert "gzip" in httpserver.log[0][0].headers["Accept-Encoding"]
    assert "br" in httpserver.log[0][0].headers["Accept-Encoding"]


def test_raw_deflate_and_stacked_codings_are_decoded(httpserver):
    text = b"<rss>" + b"entry " * 500 + b"</rss>"
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    httpserver.expect_request("/raw").respond_with_data(
        raw.compress(text) + raw.flush(), headers={"Content-Encoding": "deflate"}
    )
    httpserver.expect_request("/stacked").respond_with_data(
        brotli.compress(gzip.compress(text)), headers={"Content-Encoding": "gzip, br"}
    )
    assert fetch(httpserver.url_for("/raw")).content == text
    assert fetch(httpserver.url_for("/stacked")).content == text


def test_corrupt_compressed_body_is_a_protocol_error(httpserver):
    httpserver.expect_request("/corrupt").respond_with_data(
        b"\x1f\x8b\x08\x00garbage-not-gzip" * 10, headers={"Content-Encoding": "gzip"}
    )
    result = fetch(httpserver.url_for("/corrupt"))
    assert result.error_kind == "protocol" and result.content is None


def test_user_agent_names_wiredesk(httpserver):
    httpserver.expect_request("/ua").respond_with_data("ok")
    assert fetch(httpserver.url_for("/ua")).ok
    agent = httpserver.log[0][0].headers["User-Agent"]
    assert agent.startswith("wiredesk/") and agent != "wiredesk/"


def test_user_agent_can_be_configured(httpserver):
    httpserver.expect_request("/ua").respond_with_data("ok")
    fetch(httpserver.url_for("/ua"), user_agent="newsroom-monitor/2")
    assert httpserver.log[0][0].headers["User-Agent"] == "newsroom-monitor/2"


# --- connection-level failures ------------------------------------------------------------------------------------


def test_connection_refused_is_connect():
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]
    result = fetch(f"http://127.0.0.1:{port}/feed")
    assert result.error_kind == "connect" and result.status is None and f"127.0.0.1:{port}" in result.error


def test_tls_failure_is_tls():
    def not_tls(conn):
        conn.recv(4096)  # the TLS ClientHello, answered in plain HTTP
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    with RawServer(not_tls, read_request=False) as server:
        result = fetch(f"https://127.0.0.1:{server.port}/feed")
    assert result.error_kind == "tls" and "TLS" in result.error


def test_garbage_response_is_a_protocol_error():
    def garbage(conn):
        conn.sendall(b"this is not HTTP at all\r\n\r\n")

    with RawServer(garbage) as server:
        result = fetch(server.url)
    assert result.error_kind == "protocol"


# --- SSRF protection ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "shown", "kind"),
    [
        ("127.0.0.1", "127.0.0.1", "loopback"),
        ("[::1]", "::1", "loopback"),
        ("10.1.2.3", "10.1.2.3", "private"),
        ("192.168.1.20", "192.168.1.20", "private"),
        ("169.254.169.254", "169.254.169.254", "link-local"),
        ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1 (127.0.0.1)", "loopback"),
        ("[::ffff:a9fe:a9fe]", "::ffff:169.254.169.254 (169.254.169.254)", "link-local"),
        ("0.0.0.0", "0.0.0.0", "unspecified"),
        ("[fe80::1]", "fe80::1", "link-local"),
        ("[fd00::1]", "fd00::1", "private"),
        ("224.0.0.1", "224.0.0.1", "multicast"),
        ("100.64.0.1", "100.64.0.1", "non-public"),
    ],
)
def test_default_fetcher_refuses_non_public_addresses(host, shown, kind):
    url = f"http://{host}:8080/feed"
    result = fetch(url, allow=())
    assert result.error_kind == "refused_address" and result.status is None
    assert result.error.startswith(f"refused to fetch {url}: ")
    assert f"{shown} is a{'n' if kind[0] in 'aeiou' else ''} {kind} address" in result.error
    assert "fetch.allow_networks" in result.error


def test_refusal_happens_before_any_connection(httpserver):
    httpserver.expect_request("/feed").respond_with_data("secret")
    result = fetch(httpserver.url_for("/feed"), allow=())
    assert result.error_kind == "refused_address"
    assert httpserver.log == []


def test_hostname_is_checked_on_its_resolved_address(httpserver):
    httpserver.expect_request("/feed").respond_with_data("internal")
    url = f"http://localhost:{httpserver.port}/feed"
    refused = fetch(url, allow=())
    assert refused.error_kind == "refused_address" and "loopback address" in refused.error
    assert httpserver.log == []
    allowed = fetch(url, allow=LOOPBACK)
    assert allowed.ok and allowed.content == b"internal"


def test_redirect_to_a_refused_address_is_refused_at_the_hop(httpserver):
    target = "http://169.254.169.254/latest/meta-data/"
    httpserver.expect_request("/innocent").respond_with_data("", status=302, headers={"Location": target})
    result = fetch(httpserver.url_for("/innocent"), allow=["127.0.0.0/8"])
    assert result.error_kind == "refused_address" and result.final_url == target
    assert f"redirects to {target}" in result.error and "169.254.169.254 is a link-local address" in result.error
    assert len(httpserver.log) == 1


def test_allow_networks_opens_only_what_it_names(httpserver):
    httpserver.expect_request("/feed").respond_with_data("ok")
    assert fetch(httpserver.url_for("/feed"), allow=["::1/128"]).error_kind == "refused_address"
    assert fetch(httpserver.url_for("/feed"), allow=["127.0.0.1/32"]).ok


def test_address_policy():
    policy = AddressPolicy(["192.168.1.0/24"])
    assert policy.refusal("93.184.216.34") is None
    assert policy.refusal("2606:4700::1111") is None
    assert policy.refusal("192.168.1.7") is None
    assert policy.refusal("::ffff:192.168.1.7") is None  # the same host, written as IPv6
    assert policy.refusal("192.168.2.7") == "192.168.2.7 is a private address"
    assert "loopback" in policy.refusal("2002:7f00:1::")  # 6to4 wrapping 127.0.0.1


def test_bad_allow_networks_entry_is_a_config_error():
    with pytest.raises(ConfigError, match="fetch.allow_networks: 'intranet'"):
        Fetcher(allow_networks=["intranet"])


# --- concurrency caps ---------------------------------------------------------------------------------------------


@pytest.fixture
def threaded_server():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.mark.parametrize(
    ("limits", "expected"), [(Limits(max_per_host=2), 2), (Limits(max_per_host=4, max_connections=3), 3)]
)
def test_concurrency_caps(threaded_server, limits, expected):
    lock = threading.Lock()
    active = 0
    peak = 0

    def handler(request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        # a slow server (a quarter second an answer): what a cap is for, and the time in which a request over it
        # would overlap the others; the absence of that request cannot be waited for on any state
        time.sleep(0.25)
        with lock:
            active -= 1
        return Response("ok")

    threaded_server.expect_request("/article").respond_with_handler(handler)
    results = fetch_many([threaded_server.url_for("/article")] * 6, limits=limits)
    assert all(result.ok for result in results)
    assert peak == expected  # the cap is reached (requests do overlap) and never passed


def test_a_busy_host_does_not_hold_back_other_hosts(threaded_server):
    # Host A answers only once host B has been reached. If requests queued for A held overall slots while waiting
    # for A's own slot, B would never get one and A would give up.
    reached_b = threading.Event()

    def host_a(request):
        return Response("b was reached" if reached_b.wait(5) else "b was starved")

    def host_b(request):
        reached_b.set()
        return Response("b")

    threaded_server.expect_request("/a").respond_with_handler(host_a)
    threaded_server.expect_request("/b").respond_with_handler(host_b)
    port = threaded_server.port
    urls = [f"http://127.0.0.1:{port}/a"] * 3 + [f"http://localhost:{port}/b"]
    results = fetch_many(urls, limits=Limits(max_connections=2, max_per_host=1))
    assert [result.content for result in results] == [b"b was reached"] * 3 + [b"b"]


# --- fixtures instead of the network ------------------------------------------------------------------------------


def test_fixture_transport_serves_files_and_404s(tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_bytes(b"<rss version='2.0'/>")
    page = tmp_path / "000.html"
    page.write_text("<html><body>Zhao Leji</body></html>", encoding="utf-8")
    transport = FixtureTransport({"https://example.com/feed": feed, "https://example.com/a/000": str(page)})

    async def go():
        async with Fetcher(transport=transport) as fetcher:
            return await asyncio.gather(
                fetcher.fetch("https://example.com/feed"),
                fetcher.fetch("https://example.com/a/000"),
                fetcher.fetch("https://example.com/elsewhere"),
            )

    feed_result, page_result, missing = asyncio.run(go())
    assert feed_result.ok and feed_result.content == b"<rss version='2.0'/>"
    assert feed_result.headers["content-type"] == "application/xml"
    assert page_result.content == page.read_bytes()
    assert page_result.headers["content-type"] == "text/html; charset=utf-8"
    assert missing.error_kind == "http_error" and missing.status == 404
