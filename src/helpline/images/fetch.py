"""Fetch the image behind a link the customer shared, safely.

Links are fetched by Helpline itself: http(s) only, public addresses only (checked on every
redirect, and the connection goes to the very address that was checked), with a size cap,
timeouts and an image check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import anyio
import httpcore
import httpx

from helpline.images.errors import DEFAULT_MAX_BYTES, ImageError, too_large
from helpline.images.normalize import check_image

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SNIFFED_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
"""Content types that say nothing: the bytes themselves decide whether they are an image."""

_SHARE_INSTEAD = "Share a public link or upload the photo instead."
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

_METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "fd00:ec2::254",  # AWS IPv6
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # carrier-grade NAT
        "169.254.0.0/16",  # link-local
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses a fetch may connect to: public internet addresses only.

    `allowed` networks are let through even though they are not public (a test server on
    127.0.0.2, an intranet image host); cloud metadata addresses are refused regardless.
    """

    allowed: tuple[IPNetwork, ...] = ()

    @classmethod
    def allowing(cls, *networks: str) -> AddressPolicy:
        """A policy that also allows these networks, e.g. ``AddressPolicy.allowing("127.0.0.2/32")``."""
        return cls(tuple(ipaddress.ip_network(network) for network in networks))

    def check(self, address: str | IPAddress) -> None:
        """Raise `ImageError` unless a fetch may connect to `address`."""
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        if isinstance(ip, ipaddress.IPv6Address):
            ip = _embedded_ipv4(ip) or ipaddress.IPv6Address(int(ip))  # drops any scope id
        if ip in _METADATA_ADDRESSES:
            raise ImageError(
                "That link points to a cloud metadata address, which Helpline never fetches. "
                + _SHARE_INSTEAD
            )
        if any(ip in network for network in self.allowed):
            return
        if ip.is_loopback:
            raise ImageError(
                "That link points to the server itself (a loopback address), which Helpline "
                "does not fetch. " + _SHARE_INSTEAD
            )
        if any(ip in network for network in _PRIVATE_NETWORKS):
            raise ImageError(
                "That link points to a private network address, which Helpline does not fetch. "
                + _SHARE_INSTEAD
            )
        if not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified:
            raise ImageError(
                "That link points to an address that is not on the public internet, which "
                "Helpline does not fetch. " + _SHARE_INSTEAD
            )


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), so it is judged as such."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


async def _resolve_checked(host: str, port: int, policy: AddressPolicy) -> list[IPAddress]:
    """Resolve `host` once and return its addresses, refusing if any of them is not allowed."""
    name = host.rstrip(".").lower()
    if name in _METADATA_HOSTS:
        raise ImageError(
            "That link points to a cloud metadata service, which Helpline never fetches. "
            + _SHARE_INSTEAD
        )
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(name)]
    except ValueError:
        try:
            infos = await anyio.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ImageError(
                f"Couldn't find the server {host!r} from that link. Check the link for typos, "
                "or upload the photo instead."
            ) from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        policy.check(address)
    return addresses


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks each host itself, then connects to a checked IP address.

    httpcore hands TLS the hostname separately (SNI and certificate checks stay correct), so
    pinning the IP here leaves no window for DNS to answer differently at connect time.
    """

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await _resolve_checked(host, port, self._policy)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # resolution never returns an empty list
        raise failure


def _parse_link(url: str) -> httpx.URL:
    """Parse a link the customer gave, refusing anything but an http(s) URL with a host."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ImageError(
            "That link is not a valid web address. Copy the full link (starting with https://) "
            "or upload the photo instead."
        ) from exc
    if parsed.scheme not in ("http", "https"):
        shown = parsed.scheme or "no scheme"
        raise ImageError(
            f"Helpline only fetches images from http:// or https:// links, not {shown}. "
            + _SHARE_INSTEAD
        )
    if not parsed.host:
        raise ImageError("That link has no server name in it. " + _SHARE_INSTEAD)
    return parsed


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return ""


async def fetch_image(
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = 10.0,
    max_redirects: int = 3,
    policy: AddressPolicy | None = None,
) -> bytes:
    """Download the image at a public http(s) link, refusing anything unsafe or not an image.

    `timeout` bounds the whole fetch, redirects included, and each connect and read within it.
    """
    pinned = _PinnedBackend(policy or AddressPolicy())
    link = _parse_link(url)
    timeouts = {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    try:
        with anyio.fail_after(timeout):
            async with httpcore.AsyncConnectionPool(network_backend=pinned, retries=0) as pool:
                for _ in range(max_redirects + 1):
                    outcome = await _get(pool, link, timeouts, max_bytes)
                    if isinstance(outcome, bytes):
                        data = outcome
                        break
                    link = _parse_link(str(link.join(outcome)))
                else:
                    raise ImageError(
                        f"That link redirected more than {max_redirects} times without reaching "
                        "an image. Open it in your browser and share the image's own address, or "
                        "upload the photo instead."
                    )
    except (TimeoutError, httpcore.TimeoutException) as exc:
        raise ImageError(
            "The image at that link took too long to download. Try again in a moment, or upload "
            "the photo instead."
        ) from exc
    except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
        raise ImageError(
            f"Couldn't download the image from {link.host}: the connection failed. Check that the "
            "link opens in your browser, or upload the photo instead."
        ) from exc
    check_image(data, "The file at that link")
    return data


async def _get(
    pool: httpcore.AsyncConnectionPool,
    link: httpx.URL,
    timeouts: dict[str, float],
    max_bytes: int,
) -> bytes | str:
    """One GET: the body when it is an acceptable image, or the Location of a redirect."""
    target = httpcore.URL(
        scheme=link.raw_scheme, host=link.raw_host, port=link.port, target=link.raw_path
    )
    headers = [
        (b"Host", link.netloc),
        (b"Accept", b"image/*"),
        (b"Accept-Encoding", b"identity"),
        (b"User-Agent", b"Helpline image fetcher"),
    ]
    async with pool.stream(
        "GET", target, headers=headers, extensions={"timeout": timeouts}
    ) as response:
        if response.status in _REDIRECT_STATUSES:
            location = _header(response.headers, b"location")
            if not location:
                raise ImageError("That link redirects without saying where to. " + _SHARE_INSTEAD)
            return location
        if response.status != 200:
            raise ImageError(
                f"The link answered with HTTP {response.status} instead of an image. Check that "
                "it is public and still valid, or upload the photo instead."
            )
        content_type = _header(response.headers, b"content-type").split(";")[0].strip().lower()
        if not content_type.startswith("image/") and content_type not in SNIFFED_CONTENT_TYPES:
            raise ImageError(
                f"That link opens {content_type}, not an image. Share the image's own address "
                "(right-click the image and copy its address) or upload the photo instead."
            )
        declared = _header(response.headers, b"content-length")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_large(max_bytes)
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > max_bytes:
                raise too_large(max_bytes)
        return bytes(body)
