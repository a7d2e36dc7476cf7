"""Fetch feeds and article pages over HTTP(S), within limits, without reaching private networks.

One fetcher serves the whole daemon (connection reuse, concurrency caps). ``fetch`` never raises for network or
HTTP problems: it returns a FetchResult whose ``error_kind`` says what went wrong, so the scheduler can decide
(back off, retire a gone feed, honour Retry-After) without parsing exception text.

Requests only reach public addresses unless ``allow_networks`` opens more. The check is made on the address the
socket actually connects to, after the one DNS resolution that connection uses, and again for every redirect hop:
a hostname that resolves to 127.0.0.1, or that re-resolves differently between a check and the connection (DNS
rebinding), cannot get through.

Offline replay hands the same fetcher a FixtureTransport instead of the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import mimetypes
import os
import select
import socket
import ssl
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import urlencode

import brotli
import httpcore
import httpx

from daemon.errors import ConfigError, WiredeskError
from daemon.fetch.urls import redact
from daemon.schedule import parse_retry_after
from daemon.states import FETCH_ERROR_KINDS, ErrorKind

__all__ = [
    "ERROR_KINDS",
    "AddressPolicy",
    "FetchResult",
    "Fetcher",
    "FixtureTransport",
    "Limits",
    "Validators",
    "default_user_agent",
]

# What went wrong, for the scheduler: the fetcher's part of the one error vocabulary (daemon.states.ErrorKind).
ERROR_KINDS = FETCH_ERROR_KINDS

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT_REDIRECTS = frozenset({301, 308})
# Decoded bytes produced per decompression step: keeps a compression bomb from expanding beyond the cap in one go.
_PIECE = 64 * 1024
# An unwanted body this small (declared) is read and dropped so that its connection can serve the next request, if it
# arrives within _DRAIN_SECONDS; anything else is not worth the wait, and the connection is closed instead.
_DRAIN_MAX = 16 * 1024
_DRAIN_SECONDS = 1.0
_NO_BODY = frozenset({204, 304})
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # whole exchange, redirects and slow-drip body included
    connect_timeout: float = 10.0
    max_bytes: int = 10 * 1024 * 1024  # cap on the decoded body
    max_redirects: int = 5
    max_connections: int = 20  # requests in flight overall
    max_per_host: int = 2  # requests in flight to one host: politeness

    def __post_init__(self) -> None:
        for name in ("timeout", "connect_timeout", "max_bytes", "max_connections", "max_per_host"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"fetch.{name} must be positive")
        if self.max_redirects < 0:
            raise ConfigError("fetch.max_redirects must not be negative")


@dataclass(frozen=True)
class Validators:
    """What the previous fetch returned, for a conditional GET."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int | None  # last HTTP status, None when no response
    content: bytes | None  # decoded body; None on 304 and on errors
    headers: Mapping[str, str]  # lower-cased headers of the final response
    etag: str | None
    last_modified: str | None
    permanent_url: str | None  # where the resource moved when every redirect was 301/308 and the fetch worked
    not_modified: bool  # 304
    retry_after: float | None  # seconds, from Retry-After on 429/503
    error_kind: ErrorKind | None  # None on success and 304; else one of ERROR_KINDS
    error: str | None  # one line naming the URL and the reason
    elapsed: float  # seconds spent on the exchange (waiting for a free slot not included)

    @property
    def ok(self) -> bool:
        return self.error_kind is None


def default_user_agent() -> str:
    return f"wiredesk/{_version()} (+https://github.com/wiredesk/wiredesk)"


def _version() -> str:
    try:
        from daemon import __version__

        return str(__version__)
    except ImportError:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("wiredesk")
        except PackageNotFoundError:
            return "0"


# --- which addresses may be reached -------------------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# The NAT64 well-known prefix (RFC 6052): a translator forwards 64:ff9b::7f00:1 to 127.0.0.1.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# The rule is ipaddress's is_global. These ranges are not globally reachable either, but the ipaddress module of the
# Python versions wiredesk runs on counts them as global (its table predates them or leaves them out):
NOT_GLOBAL_BEYOND_IPADDRESS = (
    ipaddress.IPv6Network("fec0::/10"),  # site-local, deprecated by RFC 3879 but still routed inside sites
    ipaddress.IPv6Network("3fff::/20"),  # documentation, RFC 9637
    ipaddress.IPv6Network("5f00::/16"),  # SRv6 segment identifiers, RFC 9602
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use IPv4/IPv6 translation, RFC 8215
    ipaddress.IPv4Network("192.0.0.0/24"),  # IETF protocol assignments, RFC 6890 (older tables list only parts)
    ipaddress.IPv4Network("192.88.99.0/24"),  # 6to4 relay anycast, deprecated by RFC 7526
)


def _effective(ip: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for, when it embeds one (::ffff:127.0.0.1 is 127.0.0.1; so are the
    6to4 2002:7f00:1:: and the NAT64 64:ff9b::7f00:1)."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return embedded
    return ip


def _forbidden_kind(ip: IPAddress) -> str | None:
    if ip.is_loopback:
        return "a loopback"
    if ip.is_link_local:
        return "a link-local"
    if ip.is_multicast:
        return "a multicast"
    if ip.is_unspecified:
        return "an unspecified"
    if ip.is_reserved:
        return "a reserved"
    if ip.is_private:
        return "a private"
    if getattr(ip, "is_site_local", False):  # IPv6 only
        return "a site-local"
    # the rule: only globally reachable addresses (100.64.0.0/10, carrier-grade NAT, is one that is not)
    if not ip.is_global or any(ip.version == net.version and ip in net for net in NOT_GLOBAL_BEYOND_IPADDRESS):
        return "a non-public"
    return None


class AddressPolicy:
    """Which IP addresses the fetcher may connect to: public ones, plus the networks the config allows."""

    def __init__(self, allow_networks: Iterable[str] = ()):
        allowed = []
        for text in allow_networks:
            try:
                allowed.append(ipaddress.ip_network(str(text).strip(), strict=False))
            except ValueError as exc:
                raise ConfigError(
                    f"fetch.allow_networks: {text!r} is not an IP network (write e.g. '192.168.1.0/24' or '::1/128')"
                ) from exc
        self.allowed = tuple(allowed)

    def refusal(self, address: str) -> str | None:
        """Why connecting to ``address`` is refused, or None when it is allowed."""
        written = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone (fe80::1%eth0)
        ip = _effective(written)
        if any(ip.version == net.version and ip in net for net in self.allowed):
            return None
        kind = _forbidden_kind(ip)
        shown = address if ip == written else f"{address} ({ip})"
        return None if kind is None else f"{shown} is {kind} address"


class RefusedAddress(WiredeskError):
    """Raised from the socket layer when a host only resolves to addresses the policy refuses."""

    def __init__(self, host: str, reason: str):
        super().__init__(reason)
        self.host = host
        self.reason = reason


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, and connects to a checked address: nothing else reaches a socket."""

    def __init__(self, policy: AddressPolicy):
        self._policy = policy

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        allowed = [address for address in addresses if self._policy.refusal(address) is None]
        if not allowed:
            raise RefusedAddress(host, self._policy.refusal(addresses[0]) or "")
        failure: Exception | None = None
        for address in allowed:
            try:
                return await _Stream.connect(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    @staticmethod
    async def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            raise httpcore.ConnectError(f"cannot resolve host {host}")
        return addresses

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Stream(httpcore.AsyncNetworkStream):
    """A connection on asyncio's own streams, for httpcore.

    httpcore's default goes through anyio, which wraps every read and write in a cancel scope of its own: a sixth of
    the time of a poll of many feeds. Two more things are done on the raw socket (the same one under TLS):

    - "is this idle connection still good?" is answered from the socket and the stream's end, without reading;
    - every read re-arms quick acknowledgements (Linux). A server that writes a response's headers and body in two
      sends with Nagle's algorithm on (Python's http.server, for one) holds the body until the headers are
      acknowledged, and a kept-alive connection acknowledges late: 40 ms lost on every response otherwise.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._reader = reader
        self._writer = writer
        self._socket = writer.get_extra_info("socket")
        self._quickack = _QUICKACK is not None and self._socket is not None

    @classmethod
    async def connect(
        cls,
        address: str,
        port: int,
        timeout: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> _Stream:
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if local_address:
                sock.bind((local_address, 0))
            async with asyncio.timeout(timeout):
                await asyncio.get_running_loop().sock_connect(sock, (address, port))
            reader, writer = await asyncio.open_connection(sock=sock)
        except TimeoutError as exc:
            sock.close()
            raise httpcore.ConnectTimeout(f"connecting to {address} port {port} timed out") from exc
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        except BaseException:
            sock.close()
            raise
        return cls(reader, writer)

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                data = await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout("no data within the read timeout") from exc
        except OSError as exc:  # resets, TLS errors
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from exc
        if self._quickack:
            try:
                self._socket.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except OSError:  # closed meanwhile, or the option is refused: only a little slower
                self._quickack = False
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout("could not send within the write timeout") from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        self._writer.close()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from exc
        except OSError as exc:  # ssl.SSLError included: the cause is kept for the "tls" error kind
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # an idle connection with something to read has been closed by the server, or is about to be
            return self._reader.at_eof() or _readable(self._socket)
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "socket":
            return self._socket
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        return None


def _readable(sock: Any) -> bool:
    # A closed socket counts as readable: its next read returns b"", which is how the pool learns it is gone.
    fd = -1 if sock is None else sock.fileno()
    if fd < 0:
        return True
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle takes tens of milliseconds; one verified context serves every fetcher.
    return httpx.create_ssl_context(trust_env=False)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response conversion, exception mapping) on a pool whose sockets are guarded."""

    def __init__(self, policy: AddressPolicy, limits: Limits):
        context = _ssl_context()
        super().__init__(verify=context, trust_env=False)
        if not hasattr(self, "_pool"):  # pragma: no cover - would mean an httpx release changed its internals
            raise RuntimeError("unsupported httpx version: AsyncHTTPTransport has no connection pool to guard")
        # httpx types its pool as httpcore's; ours keeps that pool's interface
        self._pool = _Pool(  # type: ignore[assignment]
            context, _GuardedBackend(policy), max_idle=limits.max_connections, keepalive_expiry=5.0
        )


class _Pool:
    """Keep-alive connections by origin, handed out again by the next request to the same origin.

    In place of httpcore's pool, whose bookkeeping walks every connection, squared when several are idle, each time a
    request starts or ends: that was most of the fetcher's time in a poll of many feeds on one host. The fetcher's
    semaphores already cap the requests in flight, overall and per host, so this pool only remembers idle
    connections, at most ``max_idle`` of them.
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        backend: httpcore.AsyncNetworkBackend,
        *,
        max_idle: int,
        keepalive_expiry: float,
    ):
        self._ssl_context = ssl_context
        self._backend = backend
        self._max_idle = max_idle
        self._keepalive_expiry = keepalive_expiry
        self._idle: dict[tuple[bytes, bytes, int], list[httpcore.AsyncHTTPConnection]] = {}  # by scheme, host, port
        self._idle_count = 0

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if request.url.scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(
                f"unsupported URL scheme {request.url.scheme.decode(errors='replace')!r}"
            )
        origin = request.url.origin
        while True:
            connection = await self._take_idle(_key(origin))
            if connection is None:
                connection = httpcore.AsyncHTTPConnection(
                    origin,
                    ssl_context=self._ssl_context,
                    keepalive_expiry=self._keepalive_expiry,
                    network_backend=self._backend,
                )
            try:
                response = await connection.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                await connection.aclose()  # it went bad between the check and the request: use another
                continue
            except BaseException:
                await connection.aclose()
                raise
            return httpcore.Response(
                status=response.status,
                headers=response.headers,
                content=_PooledStream(response.stream, connection, origin, self),
                extensions=response.extensions,
            )

    async def _take_idle(self, key: tuple[bytes, bytes, int]) -> httpcore.AsyncHTTPConnection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have been closed by the server
            self._idle_count -= 1
            if connection.is_idle() and not connection.has_expired():
                return connection
            await connection.aclose()
        return None

    async def _release(self, connection: httpcore.AsyncHTTPConnection, origin: httpcore.Origin) -> None:
        if not connection.is_idle():  # the response was not read to its end, or the server closes after it
            await connection.aclose()
            return
        if self._idle_count >= self._max_idle:
            await self._drop_expired()
        if self._idle_count >= self._max_idle:
            await connection.aclose()
            return
        self._idle.setdefault(_key(origin), []).append(connection)
        self._idle_count += 1

    async def _drop_expired(self) -> None:
        for key, idle in list(self._idle.items()):
            for connection in [c for c in idle if not c.is_idle() or c.has_expired()]:
                idle.remove(connection)
                self._idle_count -= 1
                await connection.aclose()
            if not idle:
                del self._idle[key]

    async def aclose(self) -> None:
        idle = [connection for connections in self._idle.values() for connection in connections]
        self._idle.clear()
        self._idle_count = 0
        for connection in idle:
            await connection.aclose()

    async def __aenter__(self) -> _Pool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _key(origin: httpcore.Origin) -> tuple[bytes, bytes, int]:
    return origin.scheme, origin.host, origin.port


class _PooledStream:
    """A response body that gives its connection back to the pool when closed."""

    def __init__(self, stream: Any, connection: httpcore.AsyncHTTPConnection, origin: httpcore.Origin, pool: _Pool):
        self._stream = stream
        self._connection = connection
        self._origin = origin
        self._pool = pool
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            await self._pool._release(self._connection, self._origin)


# --- bounded decoding of Content-Encoding ---------------------------------------------------------------------------


class _BadBody(Exception):
    pass


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...


class _Identity:
    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            yield data


class _Zlib:
    """gzip or deflate, producing at most _PIECE bytes per step so the size cap is checked before memory grows."""

    def __init__(self, wbits: int):
        self._wbits = wbits
        self._z = zlib.decompressobj(wbits)
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data and not self._z.eof:
            try:
                out = self._z.decompress(data, _PIECE)
            except zlib.error as exc:
                if self._started or self._wbits != zlib.MAX_WBITS:
                    raise _BadBody(f"corrupt compressed body ({exc})") from exc
                # "deflate" should be zlib-wrapped, but many servers send a raw deflate stream.
                self._wbits, self._z = -zlib.MAX_WBITS, zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._started = True
            if out:
                yield out
            data = self._z.unconsumed_tail
            # A full piece may leave output pending inside zlib even when all input was consumed.
            while not data and len(out) == _PIECE and not self._z.eof:
                out = self._z.decompress(b"", _PIECE)
                if out:
                    yield out


class _Brotli:
    def __init__(self) -> None:
        self._d = brotli.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            out = self._d.process(data, output_buffer_limit=_PIECE)
            while True:
                if out:
                    yield out
                if self._d.is_finished() or (not out and self._d.can_accept_more_data()):
                    return
                out = self._d.process(b"", output_buffer_limit=_PIECE)
        except brotli.error as exc:
            raise _BadBody(f"corrupt brotli body ({exc})") from exc


class _Chain:
    """Content-Encoding lists codings in the order they were applied; undo them in reverse."""

    def __init__(self, decoders: list[_Decoder]):
        self._decoders = decoders

    def feed(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((data,))
        for decoder in self._decoders:
            pieces = _through(decoder, pieces)
        yield from pieces


def _through(decoder: _Decoder, pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from decoder.feed(piece)


def _decoder_for(content_encoding: str) -> _Decoder:
    decoders: list[_Decoder] = []
    for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
        if coding in ("gzip", "x-gzip"):
            decoders.append(_Zlib(zlib.MAX_WBITS | 16))
        elif coding == "deflate":
            decoders.append(_Zlib(zlib.MAX_WBITS))
        elif coding == "br":
            decoders.append(_Brotli())
        # Anything else ("identity", or nonsense such as "utf-8" that some servers send) is passed through.
    if not decoders:
        return _Identity()
    return decoders[0] if len(decoders) == 1 else _Chain(decoders)


# --- the fetcher ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Exchange:
    """One request/response: a redirect to follow, or a final response (body read only on 2xx)."""

    status: int
    headers: Mapping[str, str]
    location: str | None = None
    content: bytes | None = None


class _Cookies:
    """The cookies of one fetch: set by a response, sent on its redirects to the same host, then forgotten.

    Nothing is kept between fetches, so one feed's cookies never reach another feed or a later poll (a shared jar let
    a feed's ``Domain=`` cookies pile up on another host's requests until it answered 431), and none goes to another
    host on a redirect. What stays is what some sites need: a cookie set on the way (a consent or session check)
    and asked for by the page it redirects to. At most MAX_COOKIES cookies of MAX_COOKIE_BYTES each."""

    MAX_COOKIES = 20
    MAX_COOKIE_BYTES = 1024

    def __init__(self) -> None:
        self._jar: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self._jar)

    def take(self, set_cookies: list[str]) -> None:
        for line in set_cookies:
            pair = line.split(";", 1)[0].strip()
            name, eq, value = pair.partition("=")
            name = name.strip()
            if not eq or not name or len(pair) > self.MAX_COOKIE_BYTES or not pair.isascii():
                continue
            if name not in self._jar and len(self._jar) >= self.MAX_COOKIES:
                continue
            self._jar[name] = value.strip()

    def header(self) -> str:
        return "; ".join(f"{name}={value}" for name, value in self._jar.items())

    def clear(self) -> None:
        self._jar.clear()


@dataclass
class _HostSlot:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass
class _Failure(Exception):
    kind: ErrorKind
    reason: str
    status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    retry_after: float | None = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _header_value(value: str) -> bytes:
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        return value.encode("utf-8")


class Fetcher:
    """The one HTTP client of the daemon. Use as ``async with Fetcher(...) as fetcher:``."""

    def __init__(
        self,
        limits: Limits = Limits(),
        *,
        user_agent: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        allow_networks: Sequence[str] = (),
    ):
        self.limits = limits
        self.user_agent = user_agent or default_user_agent()
        # A transport handed in (fixtures, tests) decides itself where bytes come from; the network one is guarded.
        self.policy = AddressPolicy(allow_networks)
        if transport is None:
            transport = _GuardedTransport(self.policy, limits)
        self._client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,  # each hop is checked and classified here
            trust_env=False,  # an environment proxy would bypass the address check
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate, br", "Accept": "*/*"},
        )
        # Requests go to the transport directly (see _exchange); the client keeps the headers. No cookie is kept
        # between requests (see _Cookies).
        self._transport = transport
        # Only the connection gets a timeout of its own: the whole exchange runs under one deadline (see _follow), so a
        # timer on every read and write would only repeat it.
        self._extensions = {"timeout": {"connect": limits.connect_timeout, "read": None, "write": None, "pool": None}}
        self._slots = asyncio.Semaphore(limits.max_connections)
        self._hosts: dict[str, _HostSlot] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def post_form(self, url: str, form: dict[str, str], timeout: float | None = None) -> int:
        """POST a form (a WebSub subscription) and return the HTTP status. The same guard and limits as a fetch: the
        address check, the host and overall slots, one deadline for the whole exchange (``fetch.timeout``, or the
        shorter ``timeout``); of the answer's body only a small declared one is read (raw, never decompressed) and
        the rest is left unread, so no answer can cost more memory or time than that. Redirects are not followed.
        Raises :class:`WiredeskError` with one line naming the URL and the reason."""
        budget = self.limits.timeout if timeout is None else min(timeout, self.limits.timeout)
        try:
            target = _http_url(url)
            merged = httpx.Headers(self._client.headers)
            merged["Content-Type"] = "application/x-www-form-urlencoded"
            request = httpx.Request(
                "POST", target, headers=merged, content=urlencode(form).encode(), extensions=self._extensions
            )
            async with self._host_slot(target.host), self._slots:
                async with asyncio.timeout(budget):
                    response = await self._transport.handle_async_request(request)
                    try:
                        received = MappingProxyType({k.lower(): v for k, v in response.headers.items()})
                        await _drain(response, response.status_code, received)
                    finally:
                        await response.aclose()
        except _Failure as refused:
            raise WiredeskError(f"cannot post to {url}: {refused.reason}") from None
        except RefusedAddress as exc:
            raise WiredeskError(
                f"refused to post to {url}: {exc.reason} (allow it with fetch.allow_networks in the config)"
            ) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise WiredeskError(f"cannot post to {url}: no answer within {budget:g} s") from exc
        except httpx.HTTPError as exc:
            raise WiredeskError(f"cannot post to {url}: {_one_line(exc)}") from exc
        return response.status_code

    @contextlib.asynccontextmanager
    async def _host_slot(self, host: str) -> AsyncIterator[None]:
        # Slots are dropped when unused so that thousands of one-off article hosts do not pile up.
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = _HostSlot(asyncio.Semaphore(self.limits.max_per_host))
        slot.users += 1
        try:
            async with slot.semaphore:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._hosts[host]

    async def fetch(self, url: str, validators: Validators | None = None) -> FetchResult:
        """GET ``url`` (conditionally, given validators), following redirects. Never raises for network or HTTP
        problems: they come back as ``error_kind`` and a one-line ``error``."""
        validators = validators or Validators()
        headers: dict[str, bytes] = {}
        if validators.etag:
            headers["If-None-Match"] = _header_value(validators.etag)
        if validators.last_modified:
            headers["If-Modified-Since"] = _header_value(validators.last_modified)
        return await self._follow(url, headers, validators)

    async def _follow(self, url: str, headers: dict[str, bytes], validators: Validators) -> FetchResult:
        budget = self.limits.timeout  # shared by all hops; time spent waiting for a free slot is not charged
        spent = 0.0
        current_text = url
        permanent = True
        redirects = 0
        cookies = _Cookies()
        try:
            current = _http_url(url)
            while True:
                # Host slot first: requests queued behind a busy host must not hold the overall slots others need.
                async with self._host_slot(current.host), self._slots:
                    started = time.monotonic()
                    try:
                        async with asyncio.timeout(budget - spent):
                            exchange = await self._exchange(current, headers, cookies)
                    finally:
                        spent += time.monotonic() - started
                if exchange.location is None:
                    break
                if redirects >= self.limits.max_redirects:
                    raise _Failure(ErrorKind.TOO_MANY_REDIRECTS, f"more than {self.limits.max_redirects} redirects")
                redirects += 1
                permanent = permanent and exchange.status in _PERMANENT_REDIRECTS
                try:
                    current_text = str(current.join(exchange.location))
                except httpx.InvalidURL as exc:
                    raise _Failure(ErrorKind.BAD_URL, f"it redirects to an invalid URL ({_one_line(exc)})") from exc
                nxt = _http_url(current_text, redirected=True)
                if nxt.host.lower() != current.host.lower():
                    cookies.clear()  # a cookie one host set never goes to another
                current = nxt
        except _Failure as refused:
            return self._failed(url, current_text, refused, spent)
        except RefusedAddress as exc:
            via = f"it redirects to {current_text}, and " if current_text != url else ""
            reason = f"{via}{exc.reason} (allow it with fetch.allow_networks in the config)"
            return self._failed(
                url, current_text, _Failure(ErrorKind.REFUSED_ADDRESS, reason), spent, verb="refused to fetch"
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            if isinstance(exc, httpx.ConnectTimeout):
                reason = f"could not connect to {current.host} within {self.limits.connect_timeout:g} s"
            else:
                reason = f"no complete response within {self.limits.timeout:g} s"
            return self._failed(url, current_text, _Failure(ErrorKind.TIMEOUT, reason), spent)
        except httpx.ConnectError as exc:
            tls = _caused_by(exc, ssl.SSLError)
            if tls is not None:
                failure = _Failure(ErrorKind.TLS, f"TLS error with {current.host}: {_one_line(tls)}")
            elif str(exc).startswith("cannot resolve"):
                failure = _Failure(ErrorKind.CONNECT, _one_line(exc))
            else:
                failure = _Failure(ErrorKind.CONNECT, f"cannot connect to {current.host}: {_one_line(exc)}")
            return self._failed(url, current_text, failure, spent)
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            return self._failed(url, current_text, _Failure(ErrorKind.BAD_URL, _one_line(exc)), spent)
        except (httpx.ProtocolError, httpx.DecodingError) as exc:
            failure = _Failure(ErrorKind.PROTOCOL, f"broken HTTP response: {_one_line(exc)}")
            return self._failed(url, current_text, failure, spent)
        except httpx.TransportError as exc:  # read/write errors: the connection dropped mid-exchange
            failure = _Failure(ErrorKind.CONNECT, f"connection to {current.host} failed: {_one_line(exc)}")
            return self._failed(url, current_text, failure, spent)
        return self._finish(url, current_text, exchange, permanent and redirects > 0, validators, spent)

    async def _exchange(self, url: httpx.URL, headers: dict[str, bytes], cookies: _Cookies) -> _Exchange:
        # Straight to the transport: of the client's layers only headers and timeouts apply here (redirects are
        # followed above, there is no auth and no hook), and going through the rest cost a third of a warm poll.
        merged = httpx.Headers(self._client.headers)
        merged.update(headers)  # type: ignore[arg-type]  # httpx takes str keys with bytes values too
        if cookies:
            merged["Cookie"] = cookies.header()
        request = httpx.Request("GET", url, headers=merged, extensions=self._extensions)
        response = await self._transport.handle_async_request(request)
        response.request = request
        try:
            cookies.take(response.headers.get_list("set-cookie"))
            received = MappingProxyType({key.lower(): value for key, value in response.headers.items()})
            status = response.status_code
            if status in _REDIRECTS and response.headers.get("location"):
                await _drain(response, status, received)
                return _Exchange(status, received, location=response.headers["location"])
            if not 200 <= status < 300:
                await _drain(response, status, received)
                return _Exchange(status, received)
            return _Exchange(status, received, content=await self._read_body(response, received))
        finally:
            await response.aclose()  # a body left unread closes the connection rather than draining it

    async def _read_body(self, response: httpx.Response, headers: Mapping[str, str]) -> bytes:
        cap = self.limits.max_bytes
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise _Failure(ErrorKind.TOO_LARGE, f"the body is {int(declared)} bytes, over the {cap} byte limit")
        if response.is_stream_consumed:  # a transport that built its response from bytes: httpx already decoded it
            if len(response.content) > cap:
                raise _Failure(ErrorKind.TOO_LARGE, f"the decoded body is over the {cap} byte limit")
            return response.content
        decoder = _decoder_for(headers.get("content-encoding", ""))
        body = bytearray()
        try:
            # Raw bytes decoded here rather than by httpx: its decoders inflate a whole network read at once, so a
            # compression bomb would expand to many times the cap before the cap could be checked.
            async for raw in response.aiter_raw():
                for piece in decoder.feed(raw):
                    body += piece
                    if len(body) > cap:
                        raise _Failure(ErrorKind.TOO_LARGE, f"the decoded body is over the {cap} byte limit")
        except _BadBody as exc:
            raise _Failure(ErrorKind.PROTOCOL, str(exc)) from exc
        return bytes(body)

    def _finish(
        self, url: str, final_url: str, exchange: _Exchange, permanent: bool, validators: Validators, spent: float
    ) -> FetchResult:
        status, headers = exchange.status, exchange.headers
        not_modified = status == 304
        if 200 <= status < 300 or not_modified:
            # A 304 may omit the validators; the stored ones stay valid then.
            etag = headers.get("etag") or (validators.etag if not_modified else None)
            last_modified = headers.get("last-modified") or (validators.last_modified if not_modified else None)
            return FetchResult(
                url=url,
                final_url=final_url,
                status=status,
                content=exchange.content,
                headers=headers,
                etag=etag,
                last_modified=last_modified,
                permanent_url=final_url if permanent and final_url != url else None,
                not_modified=not_modified,
                retry_after=None,
                error_kind=None,
                error=None,
                elapsed=spent,
            )
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), datetime.now(timezone.utc))
        kind = {410: ErrorKind.GONE, 429: ErrorKind.RATE_LIMITED, 503: ErrorKind.UNAVAILABLE}.get(
            status, ErrorKind.HTTP_ERROR
        )
        reason = f"HTTP {status} {_reason_phrase(status)}".rstrip()
        if kind == ErrorKind.GONE:
            reason += " (the resource was removed for good)"
        elif retry_after is not None:
            reason += f" (retry after {retry_after:g} s)"
        elif status in _REDIRECTS:
            reason += " without a Location header"
        failure = _Failure(kind, reason, status=status, headers=headers, retry_after=retry_after)
        return self._failed(url, final_url, failure, spent)

    @staticmethod
    def _failed(url: str, final_url: str, failure: _Failure, spent: float, verb: str = "cannot fetch") -> FetchResult:
        return FetchResult(
            url=url,
            final_url=final_url,
            status=failure.status,
            content=None,
            headers=MappingProxyType(dict(failure.headers)),
            etag=None,
            last_modified=None,
            permanent_url=None,
            not_modified=False,
            retry_after=failure.retry_after,
            error_kind=failure.kind,
            error=redact(f"{verb} {url}: {failure.reason}"),
            elapsed=spent,
        )


async def _drain(response: httpx.Response, status: int, headers: Mapping[str, str]) -> None:
    """Read an empty or small unwanted body (a 304, a redirect, a short error page) so the connection is kept alive.

    Without this every 304 of a warm poll would cost a new connection: a response closed before its end leaves the
    connection in a state that cannot carry another request.
    """
    declared = headers.get("content-length", "").strip()
    if status not in _NO_BODY and not (declared.isdigit() and int(declared) <= _DRAIN_MAX):
        return
    if response.is_stream_consumed:  # built from bytes by a transport: there is no connection to keep
        return
    # On failure or delay the connection is closed instead; the response is still what it was.
    with contextlib.suppress(httpx.HTTPError, TimeoutError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in response.aiter_raw():
                pass


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _http_url(text: str, *, redirected: bool = False) -> httpx.URL:
    where = f"it redirects to {text!r}, which is " if redirected else ""
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _Failure(ErrorKind.BAD_URL, f"{where}not a valid URL ({_one_line(exc)})") from exc
    if url.scheme not in ("http", "https"):
        raise _Failure(ErrorKind.BAD_URL, f"{where}not an http(s) URL")
    if not url.host:
        raise _Failure(ErrorKind.BAD_URL, f"{where}a URL without a host")
    return url


# --- offline fixtures -------------------------------------------------------------------------------------------------

_CONTENT_TYPES = {
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}


def _route_key(url: str | httpx.URL) -> str:
    return str(httpx.URL(str(url)).copy_with(fragment=None))


class FixtureTransport(httpx.AsyncBaseTransport):
    """Serves a mapping {url: filesystem path} as 200 responses, 404 for anything else.

    Used by ``wiredesk replay`` so that fixtures go through the same fetcher code path with no network.
    """

    def __init__(self, routes: Mapping[str, str | os.PathLike[str]]):
        self._routes = {_route_key(url): Path(path) for url, path in routes.items()}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = self._routes.get(_route_key(request.url))
        if path is None:
            return httpx.Response(404, headers={"content-type": "text/plain"}, content=b"no fixture for this URL")
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except OSError as exc:
            message = f"fixture {path} cannot be read: {exc.strerror or exc}".encode()
            return httpx.Response(404, headers={"content-type": "text/plain"}, content=message)
        content_type = _CONTENT_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
        headers = {"content-type": content_type or "application/octet-stream", "content-length": str(len(body))}
        return httpx.Response(200, headers=headers, stream=_BodyStream(body))


class _BodyStream(httpx.AsyncByteStream):
    """Streamed like a network body, so fixtures take the same size-capped read path as HTTP responses."""

    def __init__(self, body: bytes):
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._body
