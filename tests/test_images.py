"""Image loading: safe link fetching against real local servers, normalising, finding references."""

from __future__ import annotations

import base64
import io
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from helpline.images import (
    AddressPolicy,
    ImageError,
    NormalizedImage,
    fetch_image,
    find_image_references,
    load_image,
    normalize_image,
    read_local_image,
)
from helpline.images.normalize import check_image

Route = Callable[[BaseHTTPRequestHandler], None]
ALLOW_TEST_SERVER = AddressPolicy.allowing("127.0.0.2/32")


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


PNG = encode(Image.new("RGB", (40, 30), "white"), "PNG")
JPEG = encode(Image.new("RGB", (40, 30), "white"), "JPEG")
NOISY_JPEG = encode(Image.effect_noise((200, 200), 60).convert("RGB"), "JPEG")


class Recorder(ThreadingHTTPServer):
    """A real HTTP server on one address that records every request it receives."""

    daemon_threads = True

    def __init__(self, host: str, family: socket.AddressFamily = socket.AF_INET) -> None:
        self.address_family = family
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []
        super().__init__((host, 0), _Handler)

    @property
    def base(self) -> str:
        host = str(self.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.server_port}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        self.server.routes.get(self.path.split("?")[0], reply(404, b"missing", "text/plain"))(self)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


def reply(
    status: int = 200,
    body: bytes = PNG,
    content_type: str | None = "image/png",
    length: int | None = -1,
) -> Route:
    """A route answering `body`; `length` None sends no Content-Length, -1 the true one."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        if content_type is not None:
            handler.send_header("Content-Type", content_type)
        if length is not None:
            handler.send_header("Content-Length", str(len(body) if length == -1 else length))
        handler.end_headers()
        handler.wfile.write(body)

    return route


def redirect(location: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


def drip(handler: BaseHTTPRequestHandler) -> None:
    """Headers at once, then one byte every 0.2 s: only a total deadline stops this."""
    handler.send_response(200)
    handler.send_header("Content-Type", "image/png")
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    try:
        for _ in range(20):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.2)
    except OSError:
        pass


@contextmanager
def serve(host: str, family: socket.AddressFamily = socket.AF_INET) -> Iterator[Recorder]:
    server = Recorder(host, family)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def forbidden() -> Iterator[Recorder]:
    """A loopback server that serves a real image, so only the address check can refuse it."""
    with serve("127.0.0.1") as server:
        server.routes["/"] = reply()
        yield server


@pytest.fixture
def forbidden_v6() -> Iterator[Recorder]:
    with serve("::1", socket.AF_INET6) as server:
        server.routes["/"] = reply()
        yield server


@pytest.fixture
def allowed() -> Iterator[Recorder]:
    """The one loopback address the test policy lets through."""
    with serve("127.0.0.2") as server:
        yield server


# --- fetching: what is allowed -------------------------------------------------------------


async def test_fetches_an_image_from_an_allowed_address(allowed: Recorder) -> None:
    allowed.routes["/r.png"] = reply(body=PNG)
    assert await fetch_image(allowed.base + "/r.png?size=big", policy=ALLOW_TEST_SERVER) == PNG
    assert allowed.requests == [("/r.png?size=big", allowed.base.removeprefix("http://"))]


async def test_follows_redirects_within_the_limit(allowed: Recorder) -> None:
    allowed.routes["/a"] = redirect("/b")
    allowed.routes["/b"] = redirect(allowed.base + "/c")
    allowed.routes["/c"] = redirect("d.jpg")
    allowed.routes["/d.jpg"] = reply(body=JPEG, content_type="image/jpeg")
    assert await fetch_image(allowed.base + "/a", policy=ALLOW_TEST_SERVER) == JPEG
    assert [path for path, _ in allowed.requests] == ["/a", "/b", "/c", "/d.jpg"]


async def test_sniffs_images_served_as_octet_stream(allowed: Recorder) -> None:
    allowed.routes["/blob"] = reply(body=JPEG, content_type="application/octet-stream")
    assert await fetch_image(allowed.base + "/blob", policy=ALLOW_TEST_SERVER) == JPEG


async def test_connects_to_the_checked_address_but_keeps_the_hostname(
    forbidden: Recorder,
) -> None:
    policy = AddressPolicy.allowing("127.0.0.1/32", "::1/128")
    url = f"http://localhost:{forbidden.server_port}/"
    assert await fetch_image(url, policy=policy) == PNG
    assert forbidden.requests == [("/", f"localhost:{forbidden.server_port}")]


# --- fetching: what is refused, and the refused server never sees a request ----------------


async def test_refuses_a_direct_loopback_link(forbidden: Recorder) -> None:
    with pytest.raises(ImageError, match="loopback address"):
        await fetch_image(forbidden.base + "/", policy=ALLOW_TEST_SERVER)
    assert forbidden.requests == []


async def test_refuses_localhost(forbidden: Recorder) -> None:
    with pytest.raises(ImageError, match=r"loopback address.*upload the photo"):
        await fetch_image(f"http://localhost:{forbidden.server_port}/", policy=ALLOW_TEST_SERVER)
    assert forbidden.requests == []


async def test_refuses_ipv6_loopback(forbidden_v6: Recorder) -> None:
    assert forbidden_v6.base.startswith("http://[::1]:")
    with pytest.raises(ImageError, match="loopback"):
        await fetch_image(forbidden_v6.base + "/", policy=ALLOW_TEST_SERVER)
    assert forbidden_v6.requests == []


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0x7f.1", "0x7f000001", "017700000001", "127.1", "[::ffff:127.0.0.1]"],
)
async def test_refuses_encoded_loopback_addresses(forbidden: Recorder, host: str) -> None:
    with pytest.raises(ImageError, match="loopback"):
        await fetch_image(f"http://{host}:{forbidden.server_port}/", policy=ALLOW_TEST_SERVER)
    assert forbidden.requests == []


async def test_refuses_a_redirect_to_a_forbidden_address(
    allowed: Recorder, forbidden: Recorder
) -> None:
    allowed.routes["/share"] = redirect(forbidden.base + "/")
    with pytest.raises(ImageError, match="loopback"):
        await fetch_image(allowed.base + "/share", policy=ALLOW_TEST_SERVER)
    assert [path for path, _ in allowed.requests] == ["/share"]
    assert forbidden.requests == []


async def test_refuses_a_redirect_to_another_scheme(allowed: Recorder) -> None:
    allowed.routes["/share"] = redirect("file:///etc/passwd")
    with pytest.raises(ImageError, match="only fetches images from http:// or https://"):
        await fetch_image(allowed.base + "/share", policy=ALLOW_TEST_SERVER)


async def test_refuses_too_many_redirects(allowed: Recorder) -> None:
    for hop in range(5):
        allowed.routes[f"/{hop}"] = redirect(f"/{hop + 1}")
    with pytest.raises(ImageError, match="redirected more than 3 times"):
        await fetch_image(allowed.base + "/0", policy=ALLOW_TEST_SERVER)
    assert [path for path, _ in allowed.requests] == ["/0", "/1", "/2", "/3"]


async def test_refuses_an_oversized_body_from_its_content_length(allowed: Recorder) -> None:
    # The body is tiny: only reading the declared length first can give this message.
    allowed.routes["/big"] = reply(body=PNG, length=50_000_000)
    with pytest.raises(ImageError, match="larger than 20 MB"):
        await fetch_image(allowed.base + "/big", policy=ALLOW_TEST_SERVER)


async def test_refuses_an_oversized_body_without_content_length(allowed: Recorder) -> None:
    allowed.routes["/big"] = reply(body=PNG + b"\0" * 5000, length=None)
    with pytest.raises(ImageError, match="larger than"):
        await fetch_image(allowed.base + "/big", max_bytes=4096, policy=ALLOW_TEST_SERVER)
    allowed.routes["/fits"] = reply(body=PNG, length=None)
    assert await fetch_image(allowed.base + "/fits", max_bytes=4096, policy=ALLOW_TEST_SERVER)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html>hi</html>", "text/html; charset=utf-8", "opens text/html, not an image"),
        (b"%PDF-1.7 ...", "application/pdf", "not an image"),
        (b"not really a png", "image/png", "not an image Helpline can read"),
        (b"plain bytes", "application/octet-stream", "not an image Helpline can read"),
        (PNG[: len(PNG) // 2], "image/png", "damaged or incomplete"),
    ],
)
async def test_refuses_content_that_is_not_an_image(
    allowed: Recorder, body: bytes, content_type: str, message: str
) -> None:
    allowed.routes["/x"] = reply(body=body, content_type=content_type)
    with pytest.raises(ImageError, match=message):
        await fetch_image(allowed.base + "/x", policy=ALLOW_TEST_SERVER)


async def test_refuses_http_errors(allowed: Recorder) -> None:
    with pytest.raises(ImageError, match="HTTP 404 instead of an image"):
        await fetch_image(allowed.base + "/gone.png", policy=ALLOW_TEST_SERVER)


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.2/r.png", "file:///etc/passwd", "gopher://127.0.0.2/", "//127.0.0.2/r.png"],
)
async def test_refuses_other_schemes(url: str) -> None:
    with pytest.raises(ImageError, match="only fetches images from http:// or https://"):
        await fetch_image(url, policy=ALLOW_TEST_SERVER)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://METADATA.google.internal./computeMetadata/v1/",
    ],
)
async def test_refuses_cloud_metadata_even_when_its_network_is_allowed(url: str) -> None:
    policy = AddressPolicy.allowing("169.254.0.0/16", "fd00::/8")
    with pytest.raises(ImageError, match="cloud metadata"):
        await fetch_image(url, policy=policy)


async def test_times_out_on_a_slow_server(allowed: Recorder) -> None:
    allowed.routes["/slow"] = drip
    started = time.monotonic()
    with pytest.raises(ImageError, match="took too long"):
        await fetch_image(allowed.base + "/slow", timeout=0.5, policy=ALLOW_TEST_SERVER)
    assert time.monotonic() - started < 2


async def test_reports_a_refused_connection() -> None:
    with socket.socket() as probe:  # a port on the allowed address with nothing listening
        probe.bind(("127.0.0.2", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ImageError, match="connection failed"):
        await fetch_image(f"http://127.0.0.2:{port}/", policy=ALLOW_TEST_SERVER)


async def test_reports_an_unknown_server() -> None:
    with pytest.raises(ImageError, match=r"Couldn't find the server 'receipt\.invalid'"):
        await fetch_image("https://receipt.invalid/r.png", timeout=2)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private network"),
        ("172.16.0.1", "private network"),
        ("192.168.1.1", "private network"),
        ("100.64.0.1", "private network"),  # carrier-grade NAT
        ("169.254.1.1", "private network"),  # link-local
        ("fe80::1", "private network"),
        ("fc00::1", "private network"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("2002:7f00:1::", "loopback"),  # 6to4 wrapping 127.0.0.1
        ("64:ff9b::a00:1", "private network"),  # NAT64 wrapping 10.0.0.1
        ("0.0.0.0", "not on the public internet"),
        ("::", "not on the public internet"),
        ("224.0.0.1", "not on the public internet"),
        ("ff02::1", "not on the public internet"),
        ("240.0.0.1", "not on the public internet"),
        ("192.0.2.1", "not on the public internet"),  # documentation range
        ("100.100.100.200", "cloud metadata"),
    ],
)
def test_policy_refuses_non_public_addresses(address: str, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        AddressPolicy().check(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_policy_allows_public_addresses(address: str) -> None:
    AddressPolicy().check(address)


def test_policy_allows_only_the_networks_it_names() -> None:
    ALLOW_TEST_SERVER.check("127.0.0.2")
    ALLOW_TEST_SERVER.check("::ffff:127.0.0.2")
    with pytest.raises(ImageError):
        ALLOW_TEST_SERVER.check("127.0.0.3")


# --- normalising ---------------------------------------------------------------------------


def test_small_jpeg_and_png_are_returned_untouched() -> None:
    assert normalize_image(PNG) == NormalizedImage(PNG, "image/png", 40, 30)
    assert normalize_image(JPEG) == NormalizedImage(JPEG, "image/jpeg", 40, 30)


def test_large_scan_is_downscaled_to_the_longest_side() -> None:
    scan = encode(Image.new("RGB", (2480, 3508), "white"), "JPEG")
    result = normalize_image(scan)
    assert (result.mime, result.width, result.height) == ("image/jpeg", 1448, 2048)
    with Image.open(io.BytesIO(result.data)) as decoded:
        assert decoded.size == (1448, 2048)
    smaller = normalize_image(scan, max_side=1000)
    assert max(smaller.width, smaller.height) == 1000


def test_large_png_stays_png_when_downscaled() -> None:
    result = normalize_image(encode(Image.new("L", (3000, 1000), 255), "PNG"))
    assert (result.mime, result.width, result.height) == ("image/png", 2048, 683)


@pytest.mark.parametrize(
    ("image", "image_format", "mime"),
    [
        (Image.new("RGB", (50, 20), "red"), "WEBP", "image/jpeg"),
        (Image.new("RGBA", (50, 20), (255, 0, 0, 255)), "WEBP", "image/jpeg"),  # opaque alpha
        (Image.new("RGBA", (50, 20), (255, 0, 0, 0)), "WEBP", "image/png"),
        (Image.new("P", (50, 20)), "GIF", "image/jpeg"),
        (Image.new("RGB", (50, 20), "red"), "BMP", "image/jpeg"),
        (Image.new("RGB", (50, 20), "red"), "TIFF", "image/jpeg"),
        (Image.new("CMYK", (50, 20), (0, 255, 255, 0)), "JPEG", "image/jpeg"),
    ],
)
def test_other_formats_become_jpeg_or_png(image: Image.Image, image_format: str, mime: str) -> None:
    source = encode(image, image_format, lossless=True) if image_format == "WEBP" else None
    data = source or encode(image, image_format)
    result = normalize_image(data)
    assert (result.mime, result.width, result.height) == (mime, 50, 20)
    assert result.data != data
    with Image.open(io.BytesIO(result.data)) as decoded:
        assert decoded.format == mime.removeprefix("image/").upper()
        assert decoded.mode in ("RGB", "RGBA", "L")


def test_exif_orientation_is_applied() -> None:
    stored = Image.new("RGB", (300, 100), "blue")
    stored.paste((255, 0, 0), (0, 0, 150, 100))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    result = normalize_image(encode(stored, "JPEG", exif=exif.tobytes()))
    assert (result.width, result.height) == (100, 300)
    with Image.open(io.BytesIO(result.data)) as upright:
        top, bottom = upright.getpixel((50, 20)), upright.getpixel((50, 280))
    assert isinstance(top, tuple) and isinstance(bottom, tuple)
    assert top[0] > 200 and top[2] < 60  # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60


def png_claiming(width: int, height: int) -> bytes:
    """A real PNG whose header claims another size: only the header is read before refusing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return PNG[:8] + patched + PNG[8 + len(patched) :]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not an image Helpline can read"),
        (b"garbage bytes, definitely not a picture", "not an image Helpline can read"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", "not an image Helpline can read"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "not an image Helpline can read"),
        (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic", "HEIC photo"),
        (png_claiming(20_000, 20_000), "too many pixels"),
        (png_claiming(8_000, 8_000), "too many pixels"),  # just over the cap, under Pillow's
        (png_claiming(100_000, 100_000), "too many pixels"),
        (NOISY_JPEG[: len(NOISY_JPEG) // 2], "damaged or incomplete"),
    ],
)
def test_bad_image_bytes_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        normalize_image(data)


def test_an_interrupted_upload_is_refused_as_unreadable_asking_to_send_it_again() -> None:
    photo = encode(Image.effect_noise((300, 200), 60).convert("RGB"), "PNG")  # no EXIF chunk
    with pytest.raises(ImageError) as refused:
        normalize_image(photo[:60])
    assert "could not be read" in str(refused.value)
    assert "Send the photo again" in str(refused.value)


def _damaged_versions(data: bytes, seed: int) -> Iterator[bytes]:
    """Every truncation of `data` (in about 200 steps), then 200 copies with a few bytes changed."""
    step = max(1, len(data) // 200)
    yield from (data[:end] for end in range(0, len(data), step))
    rng = random.Random(seed)
    for _ in range(200):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        yield bytes(damaged)


def _photo(mode: str) -> Image.Image:
    return Image.effect_noise((120, 80), 60).convert(mode)


ROTATED = Image.Exif()
ROTATED[0x0112] = 6  # EXIF orientation: rotate 90° to show upright


@pytest.mark.filterwarnings("ignore:.*:UserWarning:PIL")  # Pillow notes the damage it finds
@pytest.mark.parametrize(
    "photo",
    [
        encode(_photo("RGB"), "PNG"),
        encode(_photo("RGB"), "PNG", exif=ROTATED.tobytes()),
        encode(_photo("RGB").convert("P"), "PNG"),
        encode(_photo("RGB"), "JPEG"),
        encode(_photo("RGB"), "JPEG", progressive=True, exif=ROTATED.tobytes()),
        encode(_photo("CMYK"), "JPEG"),
        encode(_photo("RGB"), "WEBP", exif=ROTATED.tobytes()),
        encode(_photo("RGB").convert("P"), "GIF"),
        encode(_photo("RGB"), "BMP"),
        encode(_photo("RGB"), "TIFF", compression="tiff_lzw"),
    ],
    ids=[
        "png",
        "png-exif",
        "png-palette",
        "jpeg",
        "jpeg-progressive-exif",
        "jpeg-cmyk",
        "webp",
        "gif",
        "bmp",
        "tiff",
    ],
)
def test_a_damaged_image_is_always_an_image_error(photo: bytes) -> None:
    """Whatever part of the decode trips over the damage, the customer gets a clear refusal."""
    for damaged in _damaged_versions(photo, seed=len(photo)):
        for decode in (normalize_image, lambda data: check_image(data, "That image")):
            try:
                decode(damaged)
            except ImageError as refusal:
                assert "Share" in str(refusal) or "Send" in str(refusal)


_MEASURE_DECODES = """
import io, re, threading
from pathlib import Path
from PIL import Image
from helpline.images import normalize_image

png = io.BytesIO()
Image.new("RGB", (4000, 3000), "white").save(png, "PNG")
png = png.getvalue()
# This process's peak memory (kB); ru_maxrss would start at the parent's peak.
status = Path("/proc/self/status")
peak = lambda: int(re.search(r"VmHWM:\\s+(\\d+)", status.read_text()).group(1))
before = peak()
normalize_image(png)
one = peak() - before
threads = [threading.Thread(target=normalize_image, args=(png,)) for _ in range(6)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(one, peak() - before)
"""


def test_concurrent_decodes_are_bounded_so_memory_is_too() -> None:
    """Six uploads of a small file that decodes to 36 MB of pixels, at once: only a couple of
    them decode at a time, so the process's peak memory is a couple of decodes', not six."""
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE_DECODES], capture_output=True, text=True, check=True
    )
    one, six = (int(kilobytes) for kilobytes in measured.stdout.split())
    assert one > 30_000  # the measurement sees a decode
    assert six < 3.5 * one, (one, six)


# --- local files ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder and home folder holding a few receipts."""
    home = tmp_path / "home"
    (home / "Receipts").mkdir(parents=True)
    (home / "Receipts" / "my receipt.png").write_bytes(PNG)
    work = tmp_path / "work"
    (work / "Receipts").mkdir(parents=True)
    (work / "r.jpg").write_bytes(JPEG)
    (work / "my receipt.png").write_bytes(PNG)
    (work / "Receipts" / "lunch.webp").write_bytes(encode(Image.new("RGB", (5, 5)), "WEBP"))
    (work / "notes.txt").write_text("not an image")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home


@pytest.mark.parametrize(
    "typed",
    [
        "~/Receipts/my receipt.png",
        '"~/Receipts/my receipt.png"',
        "'~/Receipts/my receipt.png'  ",
        "~/Receipts/my\\ receipt.png",
        "my receipt.png",
        "./my receipt.png",
    ],
)
def test_reads_local_files_as_people_type_them(home: Path, typed: str) -> None:
    assert read_local_image(typed) == PNG


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("~/Receipts/missing.png", "There is no file at .*missing.png. Check the path"),
        ("~/Receipts", "is a folder, not an image"),
        ("notes.txt", "The file notes.txt is not an image Helpline can read"),
        ("/dev/null", "is not a regular file"),
        ("a" * 5000 + ".png", "There is no file at"),
    ],
)
def test_local_file_problems_are_explained(home: Path, typed: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        read_local_image(typed)


def test_local_files_have_a_size_cap(home: Path) -> None:
    with pytest.raises(ImageError, match="larger than"):
        read_local_image("r.jpg", max_bytes=100)


HOME_RECEIPT = "~/Receipts/my receipt.png"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no images here", []),
        ("see https://example.com/r.jpg.", ["https://example.com/r.jpg"]),
        ("(https://example.com/a.png)", ["https://example.com/a.png"]),
        ("![receipt](https://x.io/p.png)", ["https://x.io/p.png"]),
        (
            "https://cdn.example.com/r?id=7&sig=a%20b, thanks",
            ["https://cdn.example.com/r?id=7&sig=a%20b"],
        ),
        (
            "https://en.wikipedia.org/wiki/Receipt_(document)!",
            ["https://en.wikipedia.org/wiki/Receipt_(document)"],
        ),
        ("http://a.io/1.png and HTTPS://b.io/2.jpg", ["http://a.io/1.png", "HTTPS://b.io/2.jpg"]),
        ("stored as image://a1b2c3, see", ["image://a1b2c3"]),
        ("./r.jpg", ["./r.jpg"]),
        ("I'm sending r.jpg, it's here", ["r.jpg"]),
        ("here is my receipt.png ok", ["my receipt.png"]),
        ("my\\ receipt.png", ["my\\ receipt.png"]),
        ("Receipts/lunch.webp", ["Receipts/lunch.webp"]),
        (f"file: {HOME_RECEIPT}. Thanks", [HOME_RECEIPT]),
        (f'"{HOME_RECEIPT}"', [HOME_RECEIPT]),
        ("/nope/missing.jpg and missing.png", []),
        ("notes.txt", []),
        ("r.jpg then r.jpg again", ["r.jpg"]),
        ("https://x.io/r.jpg", ["https://x.io/r.jpg"]),
        ("r.jpg\nhttps://x.io/a.png", ["r.jpg", "https://x.io/a.png"]),
        ("https://x.io/a.png r.jpg", ["https://x.io/a.png", "r.jpg"]),
        ("/" + "a" * 5000 + ".png " + "b" * 300 + ".jpg", []),  # names too long to exist
        ("./x\0.png", []),
    ],
)
def test_find_image_references(home: Path, text: str, expected: list[str]) -> None:
    assert find_image_references(text, local_files_allowed=True) == expected


def test_find_image_references_finds_absolute_paths(home: Path) -> None:
    absolute = str(home / "Receipts" / "my receipt.png")
    assert find_image_references(f"at {absolute}", local_files_allowed=True) == [absolute]


def test_find_image_references_ignores_files_when_not_allowed(home: Path) -> None:
    text = f"./r.jpg {HOME_RECEIPT} https://x.io/a.png image://abc"
    assert find_image_references(text, local_files_allowed=False) == [
        "https://x.io/a.png",
        "image://abc",
    ]


# --- load_image ------------------------------------------------------------------------------


async def test_loads_a_data_url() -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert await load_image(url, local_files_allowed=False) == NormalizedImage(
        PNG, "image/png", 40, 30
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:image/png," + PNG.hex(), "not a base64-encoded image"),
        ("data:text/plain;base64,aGVsbG8=", "holds text/plain, not an image"),
        ("data:image/png;base64,@@@@", "base64 text does not decode"),
        ("data:image/png;base64,aGVsbG8=", "not an image Helpline can read"),
    ],
)
async def test_refuses_bad_data_urls(url: str, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        await load_image(url, local_files_allowed=False)


async def test_loads_a_link(allowed: Recorder) -> None:
    big = encode(Image.new("RGB", (3000, 1500), "white"), "WEBP")
    allowed.routes["/scan.webp"] = reply(body=big, content_type="image/webp")
    loaded = await load_image(
        allowed.base + "/scan.webp", local_files_allowed=False, policy=ALLOW_TEST_SERVER
    )
    assert (loaded.mime, loaded.width, loaded.height) == ("image/jpeg", 2048, 1024)


async def test_refuses_unsafe_links(forbidden: Recorder) -> None:
    with pytest.raises(ImageError, match="loopback"):
        await load_image(forbidden.base + "/", local_files_allowed=True)
    with pytest.raises(ImageError, match="only fetches images from http"):
        await load_image("ftp://example.com/r.png", local_files_allowed=True)
    assert forbidden.requests == []


async def test_loads_local_files_only_when_allowed(home: Path) -> None:
    loaded = await load_image(f'"{HOME_RECEIPT}"', local_files_allowed=True)
    assert loaded == NormalizedImage(PNG, "image/png", 40, 30)
    with pytest.raises(ImageError) as refused:
        await load_image(HOME_RECEIPT, local_files_allowed=False)
    assert str(refused.value).startswith(
        "Over the web, Helpline reads uploaded images and public links, never a file path on "
        "the server."
    )


async def test_stored_references_are_for_the_caller() -> None:
    with pytest.raises(ImageError, match="look them up in the store"):
        await load_image("image://abc", local_files_allowed=True)
