"""Load the images customers share (public links, uploads, local files) safely, and normalise them.

Links are fetched by Helpline itself: http(s) only, public addresses only (checked on every
redirect, and the connection goes to the very address that was checked), with a size cap,
timeouts and an image check. Every refusal is an `ImageError` whose message tells the customer
what went wrong and what to do instead.
"""

from __future__ import annotations

import base64
import binascii
import io
import ipaddress
import itertools
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import anyio
import anyio.to_thread
import httpcore
import httpx
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_PIXELS = 60_000_000
"""Larger than an A4 page scanned at 600 dpi (4961×7016), far below a decompression bomb."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_SHARE_INSTEAD = "Share a public link or upload the photo instead."
_SUPPORTED = "JPEG, PNG, WebP, GIF, BMP or TIFF"
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_SNIFFED_CONTENT_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})

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

Image.init()
# Only raster formats a photo can arrive in; never the plugins that shell out (EPS) or parse
# exotic containers.
_READABLE_FORMATS = tuple(
    name
    for name in ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")
    if name in Image.OPEN
)


class ImageError(Exception):
    """An image could not be loaded; the message says why and what the customer can do."""


@dataclass(frozen=True)
class NormalizedImage:
    """An image ready for a model or OCR: JPEG or PNG, upright, longest side within bounds."""

    data: bytes
    mime: str
    width: int
    height: int


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


def _size_refusal(max_bytes: int) -> ImageError:
    return ImageError(
        f"That image is larger than {max_bytes / (1024 * 1024):g} MB, the most Helpline accepts. "
        "Share a smaller photo (a phone screenshot of the receipt works well)."
    )


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
    _check_image(data, "The file at that link")
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
        if not content_type.startswith("image/") and content_type not in _SNIFFED_CONTENT_TYPES:
            raise ImageError(
                f"That link opens {content_type}, not an image. Share the image's own address "
                "(right-click the image and copy its address) or upload the photo instead."
            )
        declared = _header(response.headers, b"content-length")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _size_refusal(max_bytes)
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > max_bytes:
                raise _size_refusal(max_bytes)
        return bytes(body)


def _open(data: bytes, what: str) -> Image.Image:
    """Open (lazily) image bytes in one of the accepted formats, or explain why not."""
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftyphevc", b"ftypmif1", b"ftypmsf1"):
        raise ImageError(
            f"{what} is a HEIC photo (the iPhone default), which Helpline cannot read. Share it as "
            "JPEG (on iPhone: Settings › Camera › Formats › Most Compatible) or send a screenshot "
            "of it."
        )
    try:
        return Image.open(io.BytesIO(data), formats=_READABLE_FORMATS)
    except Image.DecompressionBombError as exc:
        raise _too_many_pixels(what) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"{what} is not an image Helpline can read. Share a {_SUPPORTED} photo of the receipt."
        ) from exc


def _too_many_pixels(what: str) -> ImageError:
    return ImageError(
        f"{what} has too many pixels to process safely. Share a smaller photo or a screenshot."
    )


def _damaged(what: str) -> ImageError:
    return ImageError(
        f"{what} is damaged or incomplete. Share the photo again or upload it instead."
    )


def _check_image(data: bytes, what: str) -> None:
    """Refuse bytes that are not a complete image in an accepted format."""
    with _open(data, what) as image:
        try:
            image.verify()
        except Exception as exc:  # Pillow's plugins raise assorted types for corrupt files
            raise _damaged(what) from exc


def read_local_image(path: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """Read an image file the customer named on their own machine (terminal only).

    Accepts the path as people type or paste it: quoted, with ``~``, or with backslash-escaped
    spaces as terminals produce when a file is dragged in.
    """
    file = _local_path(path)
    if not _exists(file):
        raise ImageError(
            f"There is no file at {file}. Check the path (put it in quotes if it contains spaces) "
            "and try again."
        )
    if file.is_dir():
        raise ImageError(f"{file} is a folder, not an image. Name the image file inside it.")
    if not file.is_file():
        raise ImageError(f"{file} is not a regular file. Name a photo file (JPEG or PNG) instead.")
    try:
        with file.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except PermissionError as exc:
        raise ImageError(
            f"Helpline is not allowed to read {file}. Check the file's permissions, or copy it "
            "somewhere you can read it."
        ) from exc
    except OSError as exc:
        raise ImageError(
            f"Couldn't read {file} ({exc.strerror}). Check the file, or copy it somewhere else "
            "and try again."
        ) from exc
    if len(data) > max_bytes:
        raise _size_refusal(max_bytes)
    _check_image(data, f"The file {file.name}")
    return data


def _local_path(text: str) -> Path:
    """The file a typed or pasted path means, relative paths against the current folder."""
    cleaned = text.strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1]
    file = Path(os.path.expanduser(cleaned))
    if "\\ " in cleaned and not _exists(file):
        file = Path(os.path.expanduser(cleaned.replace("\\ ", " ")))
    return file


def _exists(file: Path) -> bool:
    """Whether `file` exists; names too long or holding NUL simply do not."""
    try:
        return file.exists()
    except (OSError, ValueError):
        return False


def _is_file(text: str) -> bool:
    """Whether `text`, read as a typed path, names an existing regular file."""
    try:
        return _local_path(text).is_file()
    except (OSError, ValueError):
        return False


def normalize_image(
    data: bytes, *, max_side: int = 2048, max_pixels: int = DEFAULT_MAX_PIXELS
) -> NormalizedImage:
    """Turn any accepted image into an upright JPEG or PNG whose longest side is ≤ `max_side`.

    JPEG and PNG that need no change are returned byte for byte (after a full decode, so a
    truncated file is caught here). Other formats become JPEG, or PNG when they have
    transparency; a PNG stays PNG so receipt text keeps its sharp edges.
    """
    what = "That file"
    with _open(data, what) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(what)
        source_format = "JPEG" if image.format == "MPO" else image.format
        upright = image.getexif().get(ExifTags.Base.Orientation, 1) == 1
        scale = min(1.0, max_side / max(width, height))
        # CMYK JPEG is valid but many viewers and vision models render it wrongly.
        unchanged = (
            source_format in ("JPEG", "PNG") and upright and scale == 1.0 and image.mode != "CMYK"
        )
        if scale < 1.0:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly: much faster on big scans.
            image.draft(None, (round(width * scale), round(height * scale)))
        try:
            image.load()
        except (OSError, ValueError, SyntaxError) as exc:
            raise _damaged(what) from exc
        if unchanged:
            return NormalizedImage(data, f"image/{str(source_format).lower()}", width, height)
        fixed = ImageOps.exif_transpose(image)
    if fixed.mode not in ("RGB", "RGBA", "L", "LA"):  # palette, CMYK, 1-bit, 16-bit …
        fixed = fixed.convert("RGBA" if _has_transparency(fixed) else "RGB")
    if scale < 1.0:
        fixed.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    if source_format == "PNG" or _has_transparency(fixed):
        return _encode(fixed, "PNG")
    return _encode(fixed.convert("L" if fixed.mode in ("L", "LA") else "RGB"), "JPEG")


def _has_transparency(image: Image.Image) -> bool:
    """Whether any pixel is actually see-through (many WebP photos carry an opaque alpha)."""
    if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
        return False
    lowest_alpha, _ = cast(tuple[int, int], image.convert("RGBA").getchannel("A").getextrema())
    return lowest_alpha < 255


def _encode(image: Image.Image, image_format: str) -> NormalizedImage:
    buffer = io.BytesIO()
    if image_format == "JPEG":
        image.save(buffer, "JPEG", quality=90)
    else:
        image.save(buffer, "PNG")
    return NormalizedImage(
        buffer.getvalue(), f"image/{image_format.lower()}", image.width, image.height
    )


_EXTENSION = r"\.(?:jpe?g|png|webp|gif|bmp|tiff?|hei[cf]|avif)(?![\w])"
_URL_PATTERN = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_STORED_PATTERN = re.compile(r"\bimage://[A-Za-z0-9_-]+")
_QUOTED_PATTERN = re.compile(r"([\"'])([^\"'\n]+?" + _EXTENSION + r")\1", re.IGNORECASE)
_ANCHORED_START = re.compile(r"(?<![\w/.~\\-])(?:~[\w.-]*/|\.{1,2}/|/)")
_EXTENSION_END = re.compile(_EXTENSION, re.IGNORECASE)
_BARE_PATTERN = re.compile(r"(?<![\w/.~\\-])[\w.-]+(?:/[\w.-]+)*" + _EXTENSION, re.IGNORECASE)
_MAX_WORDS_BEFORE_BARE_NAME = 4
_MAX_CANDIDATES_PER_PATH = 8
_MAX_PATH_LENGTH = 4096
_BRACKETS = {")": "(", "]": "[", "}": "{"}


def find_image_references(text: str, *, local_files_allowed: bool) -> list[str]:
    """Images a message shares, in order: http(s) links, ``image://ID``, and existing local files.

    Every http(s) link counts (receipt links often have no file extension); trailing
    punctuation and unbalanced closing brackets are not part of a link. Local files are only
    looked for when allowed (the terminal), and only image files that exist are returned,
    written as in the message without quotes.
    """
    found: list[tuple[int, int, str]] = []
    for match in _URL_PATTERN.finditer(text):
        link = _trim_link(match.group())
        found.append((match.start(), match.start() + len(link), link))
    found.extend((m.start(), m.end(), m.group()) for m in _STORED_PATTERN.finditer(text))
    if local_files_allowed:
        found.extend(_local_references(text, [(start, end) for start, end, _ in found]))
    found.sort()
    return list(dict.fromkeys(reference for _, _, reference in found))


def _trim_link(link: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets that end a link in prose."""
    while link and _ends_outside_link(link):
        link = link[:-1]
    return link


def _ends_outside_link(link: str) -> bool:
    last = link[-1]
    if last in ".,;:!?'\"":
        return True
    opener = _BRACKETS.get(last)
    return opener is not None and link.count(last) > link.count(opener)


def _local_references(text: str, taken: list[tuple[int, int]]) -> list[tuple[int, int, str]]:
    """Existing image files named in `text` outside the `taken` spans."""
    found: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e in taken)

    def add(start: int, end: int, reference: str) -> None:
        found.append((start, end, reference))
        taken.append((start, end))

    for match in _QUOTED_PATTERN.finditer(text):
        if free(match.start(), match.end()) and _is_file(match.group(2)):
            add(match.start(), match.end(), match.group(2))
    for match in _ANCHORED_START.finditer(text):
        if not free(match.start(), match.end()):
            continue
        line_end = text.find("\n", match.start())
        line_end = len(text) if line_end == -1 else line_end
        limit = min(line_end, match.start() + _MAX_PATH_LENGTH)
        ends = _EXTENSION_END.finditer(text, match.start(), limit)
        for end in itertools.islice(ends, _MAX_CANDIDATES_PER_PATH):
            candidate = text[match.start() : end.end()]
            if free(match.start(), end.end()) and _is_file(candidate):
                add(match.start(), end.end(), candidate)
                break
    for match in _BARE_PATTERN.finditer(text):
        for start in reversed(_word_starts_before(text, match.start())):  # longest name first
            if free(start, match.end()) and _is_file(text[start : match.end()]):
                add(start, match.end(), text[start : match.end()])
                break
    return found


def _word_starts_before(text: str, start: int) -> list[int]:
    """`start` and where the few words before it on its line begin: file names hold spaces."""
    line_start = text.rfind("\n", 0, start) + 1
    starts = [start]
    while len(starts) <= _MAX_WORDS_BEFORE_BARE_NAME and starts[-1] > line_start:
        space = text.rfind(" ", line_start, starts[-1] - 1)
        starts.append(line_start if space == -1 else space + 1)
    return starts


async def load_image(
    source: str, *, local_files_allowed: bool, policy: AddressPolicy | None = None
) -> NormalizedImage:
    """Load and normalise an image from a ``data:`` URL, an http(s) link or (terminal) a file.

    ``image://ID`` references name stored images; callers resolve those from the store.
    """
    text = source.strip()
    if text.lower().startswith("data:"):
        data = _decode_data_url(text)
    elif re.match(r"[a-z][a-z0-9+.-]*://", text, re.IGNORECASE):
        if text.lower().startswith("image://"):
            raise ImageError(
                "image:// references name images already stored with a conversation; look them "
                "up in the store instead of loading them."
            )
        data = await fetch_image(text, policy=policy)
    elif not local_files_allowed:
        raise ImageError(
            "Over the web, Helpline reads uploaded images and public links, never a file path on "
            "the server. Upload the photo or share a public link to it."
        )
    else:
        data = await anyio.to_thread.run_sync(read_local_image, text)
    return await anyio.to_thread.run_sync(normalize_image, data)


def _decode_data_url(url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a base64 ``data:image/...`` URL."""
    header, comma, payload = url.partition(",")
    media_type, *parameters = header[len("data:") :].split(";")
    media_type = media_type.strip().lower()
    if not comma or "base64" not in (p.strip().lower() for p in parameters):
        raise ImageError(
            "That data: link is not a base64-encoded image. Upload the photo as a file instead."
        )
    if not media_type.startswith("image/") and media_type not in _SNIFFED_CONTENT_TYPES:
        raise ImageError(
            f"That data: link holds {media_type}, not an image. Upload a {_SUPPORTED} photo instead."
        )
    payload = "".join(payload.split())
    if len(payload) * 3 // 4 > max_bytes:
        raise _size_refusal(max_bytes)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(
            "That data: link is damaged (its base64 text does not decode). Upload the photo as a "
            "file instead."
        ) from exc
    _check_image(data, "That image")
    return data
