"""Render the printed receipts the receipt-reading tests photograph, and their answers.

Each receipt is a till slip in a different layout and currency (Malaysian ringgit
with a GST summary, a US diner, a Singapore grocer, a Lisbon café with comma
decimals, a York bookshop), typeset in DejaVu on a thermal-paper-wide page, then
tilted, speckled and saved as a scan would be. What was printed goes to labels.json
beside the images: the date, currency, total and item lines the reader must find.

The fonts are Debian's fonts-dejavu-core (``apt-get install fonts-dejavu-core``);
the tests only read the committed images, so they need neither the fonts nor this
script.

Run: python tools/render_receipts.py  (writes tests/receipts/; commit its output)
"""

from __future__ import annotations

import json
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

OUT = Path(__file__).resolve().parent.parent / "tests" / "receipts"
FONTS = Path("/usr/share/fonts/truetype/dejavu")
PAGE_WIDTH = 620  # px: an 80 mm till roll at about 200 dpi
MARGIN = 24
COLUMNS = 42  # characters a line, as a till prints them
BODY_SIZE = 22
HEADER_SIZE = 30
LINE_GAP = 10


@dataclass(frozen=True)
class Item:
    """A purchased line as printed: its name, how many, and the line's price in cents."""

    name: str
    quantity: int
    price_in_cents: int


@dataclass
class Slip:
    """One receipt: what is printed on it, how the picture is spoiled, what it should read as."""

    file: str
    header: list[str]
    body: list[str]
    items: list[Item]
    date: str
    currency: str
    total_in_cents: int
    note: str
    angle: float = 0.0
    noise: float = 0.0
    font: str = "DejaVuSansMono.ttf"
    seed: int = 0
    expected: dict[str, object] = field(init=False)

    def __post_init__(self) -> None:
        self.expected = {
            "file": self.file,
            "note": self.note,
            "date": self.date,
            "currency": self.currency,
            "total_in_cents": self.total_in_cents,
            "items": [
                {"name": i.name, "quantity": i.quantity, "price_in_cents": i.price_in_cents}
                for i in self.items
            ],
        }


def row(left: str, right: str, middle: str = "", middle_at: int = 24) -> str:
    """A fixed-width till line: ``left`` flush left, ``right`` flush right, ``middle`` at a column."""
    line = left.ljust(middle_at) + middle if middle else left
    return line + right.rjust(COLUMNS - len(line))


def rule() -> str:
    return "-" * COLUMNS


def ringgit(cents: int) -> str:
    return f"{cents / 100:.2f}"


def comma_decimal(cents: int) -> str:
    return f"{cents // 100},{cents % 100:02d}"


def slips() -> list[Slip]:
    """The receipts, each with the answer it must be read as."""
    stationery = [
        Item("SCHOOL BAG", 1, 4990),
        Item("COLOUR PENCIL 12S", 2, 1580),
        Item("EXERCISE BOOK", 5, 950),
        Item("A4 CLEAR FILE", 3, 571),
    ]
    diner = [
        Item("Coffee", 2, 500),
        Item("Pancake Stack", 1, 895),
        Item("Bacon Side", 1, 350),
        Item("Orange Juice", 3, 1050),
    ]
    grocer = [
        Item("MILO 1KG", 2, 2580),
        Item("JASMINE RICE 5KG", 1, 1495),
        Item("FRESH EGGS 10S", 1, 360),
    ]
    cafe = [
        Item("Espresso", 2, 240),
        Item("Custard tart", 1, 130),
        Item("Toasted sandwich", 1, 450),
        Item("Orange juice", 2, 600),
    ]
    books = [
        Item("Paperback novel", 1, 899),
        Item("Greeting card", 2, 500),
        Item("Tote bag", 1, 450),
    ]
    return [
        Slip(
            file="stationery_myr.jpg",
            note="ringgit; cash, change and a GST summary printed below the total",
            header=["KEDAI BUKU CERIA", "SDN BHD"],
            body=[
                "(Co. Reg. 1234567-X)",
                "No. 12, Jalan Bunga Raya",
                "43000 Kajang, Selangor",
                "GST Reg No: 000123456789",
                "",
                "TAX INVOICE",
                "Invoice No: CS00012345",
                "Date: 25/12/2018   10:17",
                "Cashier: AMIRA",
                rule(),
                row("Item", "Amount", "Qty", 26),
                rule(),
                *(row(i.name, ringgit(i.price_in_cents), str(i.quantity), 26) for i in stationery),
                rule(),
                row("Sub Total", "80.91"),
                row("Total GST", "0.00"),
                row("Rounding", "-0.01"),
                row("Total Sales (Incl GST)", "80.90"),
                "",
                row("CASH", "100.00"),
                row("Change", "19.10"),
                "",
                "GST SUMMARY",
                row("Tax Code", "Tax (RM)", "Amt (RM)", 16),
                row("ZR", "0.00", "80.91", 16),
                "",
                "Thank you. Please come again.",
            ],
            items=stationery,
            date="2018-12-25",
            currency="MYR",
            total_in_cents=8090,
            angle=0.6,
            noise=0.06,
            seed=1,
        ),
        Slip(
            file="diner_usd.jpg",
            note="US dollars; month-first date with a 12-hour clock; quantity before the name",
            header=["JOE'S DINER"],
            body=[
                "415 Main Street",
                "Springfield, IL 62701",
                "Tel (217) 555-0142",
                "",
                "12/28/2017            10:17:32 PM",
                "Server: Dana           Table 7",
                rule(),
                *(row(f"{i.quantity}  {i.name}", f"${ringgit(i.price_in_cents)}") for i in diner),
                rule(),
                row("Subtotal", "$27.95"),
                row("Sales Tax 8.75%", "$2.45"),
                row("TOTAL", "$30.40"),
                "",
                row("VISA ****4242", "$30.40"),
                "",
                "Thanks for stopping by!",
            ],
            items=diner,
            date="2017-12-28",
            currency="USD",
            total_in_cents=3040,
            angle=-1.8,
            noise=0.08,
            seed=2,
        ),
        Slip(
            file="grocer_sgd.jpg",
            note="Singapore dollars; month named in the date; a unit price under an item",
            header=["GREEN LEAF MART", "PTE LTD"],
            body=[
                "Blk 123 Ang Mo Kio Ave 3 #01-45",
                "Singapore 560123",
                "GST Reg No. M2-0123456-7",
                "",
                "30 MAR 2018 18:22          POS 03",
                rule(),
                row("Description", "S$", "Qty", 28),
                rule(),
                row(grocer[0].name, "", ""),
                row("   2 @ 12.90", "25.80"),
                row(grocer[1].name, "14.95", "1", 28),
                row(grocer[2].name, "3.60", "1", 28),
                rule(),
                row("TOTAL S$", "44.35"),
                row("GST 7% included", "2.90"),
                row("NETS", "44.35"),
                "",
                "Items: 4",
                "Thank you for shopping with us",
            ],
            items=grocer,
            date="2018-03-30",
            currency="SGD",
            total_in_cents=4435,
            font="DejaVuSans.ttf",
            angle=1.2,
            noise=0.05,
            seed=3,
        ),
        Slip(
            file="cafe_eur.png",
            note="euros with comma decimals; ISO date; VAT (IVA) printed after the total",
            header=["CAFÉ DO CANTO"],
            body=[
                "Rua Augusta 120, 1100-053 Lisboa",
                "NIF 501234567",
                "",
                "2019-03-30  14:05        Mesa 4",
                rule(),
                row("Qty  Description", "EUR"),
                rule(),
                *(row(f"{i.quantity}    {i.name}", comma_decimal(i.price_in_cents)) for i in cafe),
                rule(),
                row("TOTAL EUR", "14,20"),
                row("IVA 23% incl.", "2,66"),
                row("Multibanco", "14,20"),
                "",
                "Obrigado!",
            ],
            items=cafe,
            date="2019-03-30",
            currency="EUR",
            total_in_cents=1420,
        ),
        Slip(
            file="bookshop_gbp.jpg",
            note="pounds sterling; labelled day-first date; VAT included note",
            header=["THE CORNER BOOKSHOP"],
            body=[
                "14 High Street, York YO1 8RE",
                "VAT No. GB 123 4567 89",
                "",
                "Date 06/04/2018       Time 11:42",
                rule(),
                row("QTY ITEM", "PRICE"),
                rule(),
                *(row(f"{i.quantity}   {i.name}", f"£{ringgit(i.price_in_cents)}") for i in books),
                rule(),
                row("SUBTOTAL", "£18.49"),
                row("TOTAL TO PAY", "£18.49"),
                row("CARD", "£18.49"),
                row("VAT 20% included", "£3.08"),
                "",
                "Refunds within 28 days with receipt",
            ],
            items=books,
            date="2018-04-06",
            currency="GBP",
            total_in_cents=1849,
            font="DejaVuSerif.ttf",
            angle=-0.8,
            noise=0.07,
            seed=5,
        ),
    ]


def render(slip: Slip) -> Image.Image:
    """The slip typeset on white paper, then tilted and speckled like a phone scan."""
    header_font = ImageFont.truetype(str(FONTS / "DejaVuSans-Bold.ttf"), HEADER_SIZE)
    body_font = ImageFont.truetype(str(FONTS / slip.font), BODY_SIZE)
    lines = [(text, header_font) for text in slip.header] + [(t, body_font) for t in slip.body]
    height = 2 * MARGIN + sum(font.size + LINE_GAP for _, font in lines)
    page = Image.new("L", (PAGE_WIDTH, int(height)), 255)
    draw = ImageDraw.Draw(page)
    y = MARGIN
    for text, font in lines:
        if len(text) == COLUMNS:
            _draw_columns(draw, text, font, y)
        elif text:
            draw.text(((PAGE_WIDTH - font.getlength(text)) / 2, y), text, font=font, fill=30)
        y += int(font.size) + LINE_GAP
    return _spoil(page, slip)


def _draw_columns(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, y: int
) -> None:
    """A full-width till line, each run of words at its character column, the last flush right.

    Placing runs by column keeps a proportional font's columns as straight as a till's.
    """
    cell = (PAGE_WIDTH - 2 * MARGIN) / COLUMNS
    for run in re.finditer(r"\S+(?: \S+)*", text):
        if run.end() == COLUMNS and run.start() > 0:
            x = PAGE_WIDTH - MARGIN - font.getlength(run.group())
        else:
            x = MARGIN + cell * run.start()
        draw.text((x, y), run.group(), font=font, fill=30)


def _spoil(page: Image.Image, slip: Slip) -> Image.Image:
    """Lay the paper on a grey desk, tilt it, soften the print and add sensor noise."""
    generator = random.Random(slip.seed)
    desk = Image.new("L", (page.width + 80, page.height + 80), 150)
    desk.paste(page, (40, 40))
    tilted = desk.rotate(slip.angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=150)
    softened = tilted.filter(ImageFilter.GaussianBlur(0.6))
    if slip.noise:
        grain = Image.frombytes(
            "L", softened.size, generator.randbytes(softened.width * softened.height)
        )
        softened = Image.blend(softened, grain, slip.noise)
    return softened


def main() -> None:
    if not (FONTS / "DejaVuSansMono.ttf").is_file():
        sys.exit(
            f"No DejaVu fonts in {FONTS}: install them with 'apt-get install fonts-dejavu-core'."
        )
    OUT.mkdir(parents=True, exist_ok=True)
    answers = []
    for slip in slips():
        picture = render(slip)
        target = OUT / slip.file
        if target.suffix == ".png":
            picture.save(target, optimize=True)
        else:
            picture.save(target, quality=80, optimize=True)
        answers.append(slip.expected)
        print(f"{target.relative_to(OUT.parent.parent)}: {target.stat().st_size // 1024} KB")
    (OUT / "labels.json").write_text(json.dumps(answers, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
