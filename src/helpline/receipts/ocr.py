"""Offline text recognition for receipt photos, with rapidocr's bundled ONNX models.

The engine loads on first use (about a second) and is shared by the whole process;
recognitions run one at a time, because two at once only fight over the same CPU
cores and double the memory.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image, ImageOps, UnidentifiedImageError

from helpline.receipts.schema import ReceiptReadError

if TYPE_CHECKING:
    from rapidocr import RapidOCR

# Receipts are narrow columns of text; 1000 px across keeps small print legible
# and makes detection and recognition about twice as fast as full-size scans.
MAX_WIDTH = 1000
MAX_HEIGHT = 2400
DETECT_SIDE = 1280

_engine: RapidOCR | None = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class OcrLine:
    """One recognised run of text and its axis-aligned box, in the analysed image's pixels."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center_y(self) -> float:
        return (self.y0 + self.y1) / 2


def recognise(image: bytes) -> list[OcrLine]:
    """Recognise the text lines of an image (JPEG/PNG/... bytes), top to bottom.

    Blocks for about a second per receipt; call it from a worker thread in async code.
    Raises ``ReceiptReadError`` when the bytes are not an image.
    """
    picture = _prepare(image)
    engine = _get_engine()
    with _run_lock:
        result: Any = engine(picture)
    if result.boxes is None or result.txts is None:
        return []
    lines = [
        OcrLine(
            text=str(text).strip(),
            x0=float(min(p[0] for p in box)),
            y0=float(min(p[1] for p in box)),
            x1=float(max(p[0] for p in box)),
            y1=float(max(p[1] for p in box)),
            score=float(score),
        )
        for box, text, score in zip(result.boxes, result.txts, result.scores, strict=True)
        if str(text).strip()
    ]
    return sorted(lines, key=lambda line: (line.y0, line.x0))


def warm_up() -> None:
    """Load the models now rather than on the first receipt."""
    _get_engine()


def _prepare(image: bytes) -> Image.Image:
    """Decode, undo camera rotation, and shrink to at most ``MAX_WIDTH`` x ``MAX_HEIGHT``."""
    try:
        with Image.open(io.BytesIO(image)) as opened:
            # JPEG can decode straight at 1/2, 1/4 or 1/8 size: much faster for big scans.
            opened.draft("RGB", (MAX_WIDTH, MAX_WIDTH * opened.height // max(1, opened.width)))
            picture: Image.Image = ImageOps.exif_transpose(opened).convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as error:
        raise ReceiptReadError(
            "That file is not an image I can open. Please send the receipt as a JPEG or PNG photo."
        ) from error
    scale = min(MAX_WIDTH / picture.width, MAX_HEIGHT / picture.height, 1.0)
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        picture = picture.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    return picture


def _get_engine() -> RapidOCR:
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                from rapidocr import RapidOCR

                _engine = RapidOCR(
                    params={
                        "Global.log_level": "error",
                        # Receipts are photographed upright; the angle classifier costs
                        # a third of the time and fixes nothing here.
                        "Global.use_cls": False,
                        # Detect on at most DETECT_SIDE px along the long side instead
                        # of upscaling the short side to 736 px: boxes come out as
                        # well, in half the time.
                        "Det.limit_type": "max",
                        "Det.limit_side_len": DETECT_SIDE,
                    }
                )
    return _engine
