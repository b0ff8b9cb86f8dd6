"""Turn OCR text lines into a ``Receipt``, using where each line sits on the page.

Boxes are chained into printed rows (left to right, following the paper's tilt),
then each field is chosen by evidence:

- total: amounts on rows labelled as a total score by how final the label is
  ("net total", "total payable" beat a bare "total"); subtotals, tax, discounts,
  rounding, cash tendered, change and the GST/tax summary table never count; an
  amount equal to cash tendered minus change, printed several times, or printed
  large gains weight.
- date: every date-like string in any common receipt format; a row labelled
  "date" wins, otherwise the first one. Day-first unless the receipt itself
  shows month-first (a second field above 12) or the currency is USD.
- currency: see ``infer_currency``.
- items: rows between the column header and the first total-like row that end
  in an amount and carry a name.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from helpline.receipts.ocr import OcrLine
from helpline.receipts.schema import Receipt, ReceiptItem, ReceiptReadError

# ---------------------------------------------------------------- rows


@dataclass
class Row:
    """Boxes printed on one line of the receipt, left to right."""

    cells: list[OcrLine] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(cell.text for cell in self.cells)

    @property
    def height(self) -> float:
        return statistics.median(cell.height for cell in self.cells)


def group_rows(lines: Sequence[OcrLine]) -> list[Row]:
    """Chain boxes into rows: each box links to the nearest box on its right at its height.

    Heights are compared after correcting for the page's tilt, and links are made
    best-first, so a row on a curled or slanted photo still reads as one row.
    """
    if not lines:
        return []
    slope = _tilt(lines)
    boxes = list(lines)
    candidates: list[tuple[float, float, int, int]] = []
    for i, left in enumerate(boxes):
        for j, right in enumerate(boxes):
            if i == j or right.x0 < left.x0 + 0.5 * (left.x1 - left.x0):
                continue
            gap = max(0.0, right.x0 - left.x1)
            shift = slope * ((right.x0 + right.x1) / 2 - (left.x0 + left.x1) / 2)
            top, bottom = left.y0 + shift, left.y1 + shift
            overlap = min(bottom, right.y1) - max(top, right.y0)
            ratio = overlap / max(1.0, min(left.height, right.height))
            if ratio >= 0.5:
                # Nearest first; a weaker overlap counts as extra distance.
                cost = gap + 4 * (1 - min(ratio, 1.0)) * min(left.height, right.height)
                candidates.append((cost, gap, i, j))
    candidates.sort()
    right_of: dict[int, int] = {}
    left_of: dict[int, int] = {}
    for _, _, i, j in candidates:
        if i in right_of or j in left_of or _reaches(right_of, j, i):
            continue
        right_of[i] = j
        left_of[j] = i
    rows: list[Row] = []
    for i in range(len(boxes)):
        if i in left_of:
            continue
        row = Row([boxes[i]])
        while i in right_of:
            i = right_of[i]
            row.cells.append(boxes[i])
        rows.append(row)
    first = rows[0].cells[0]
    return sorted(rows, key=lambda r: r.cells[0].center_y - slope * (r.cells[0].x0 - first.x0))


def _reaches(right_of: dict[int, int], start: int, target: int) -> bool:
    """Whether following right-links from ``start`` arrives at ``target`` (a cycle)."""
    while start in right_of:
        start = right_of[start]
        if start == target:
            return True
    return False


def _tilt(lines: Sequence[OcrLine]) -> float:
    """The page's slope (dy/dx), from boxes printed side by side; 0 when unclear.

    A rough estimate from loosely level pairs is refined once with a tighter band
    around it, so neighbouring rows do not drag it back towards level.
    """
    slope = 0.0
    for tolerance in (1.0, 0.5):
        slopes = []
        for a in lines:
            for b in lines:
                dx = (b.x0 + b.x1) / 2 - (a.x0 + a.x1) / 2
                if dx <= 3 * a.height:
                    continue
                dy = b.center_y - a.center_y
                if abs(dy - slope * dx) < tolerance * a.height:
                    slopes.append(dy / dx)
        if len(slopes) < 3:
            return slope
        slope = statistics.median(slopes)
    return slope


# ---------------------------------------------------------------- amounts

_AMOUNT = re.compile(
    r"(?<![\d.,])(-)?\s?(?:RM|MYR|SGD|USD|S\$|\$|€|£)?\s?(-)?"
    r"(\d{1,3}(?:,\d{3})+|\d+)[.,](\d{2})(?![\d.,]*\d)"
)


def amounts_in(text: str) -> list[int]:
    """Money amounts in a piece of text, in cents (``RM1,234.50`` → 123450)."""
    found = []
    for match in _AMOUNT.finditer(text):
        cents = int(match.group(3).replace(",", "")) * 100 + int(match.group(4))
        found.append(-cents if match.group(1) or match.group(2) else cents)
    return found


# ---------------------------------------------------------------- total

_FINAL_TOTAL = re.compile(
    r"net+\s*total|grand\s*total|total\s*payable|amount\s*(?:due|payable)|"
    r"total\s*amount\s*(?:due|payable)|rounded\s*total|total\s*(?:rm\s*)?incl|"
    r"inclusive|incl|total\s*sales|total\s*due|total\s*rm|total\s*\(rm\)|balance\s*due|"
    r"jumlah|to\s*pay|net\s*amount|total\s*after",
    re.IGNORECASE,
)
_TOTAL = re.compile(r"t[o0c][tl][a4][li1]|amount|t[o0]ta", re.IGNORECASE)
_NOT_TOTAL = re.compile(
    r"sub\s*-?\s*t[o0]tal|excl|exclusive|before|total\s*qty|qty|total\s*items?|item\s*count|"
    r"no\.?\s*of\s*items|gst|tax|vat|\biva\b|sst|service|discount|saving|rounding|round\s*adj|adj|"
    r"cash|change|tender|paid|payment|refund|deposit|balance(?!\s*due)|points?|supplies|"
    r"visa|master|card|credit|debit",
    re.IGNORECASE,
)
# Once a tax summary table starts, its "Total" rows are tax bases, never the bill.
_SUMMARY = re.compile(r"summary|tax\s*code|gst\s*analysis|mary\b", re.IGNORECASE)
_ROUNDING = re.compile(r"round", re.IGNORECASE)
_CASH = re.compile(r"\bcash\b|tender|paid|received", re.IGNORECASE)
_CHANGE = re.compile(r"change|balance|baki", re.IGNORECASE)


def find_total(rows: Sequence[Row]) -> int | None:
    """The amount payable, in cents, or ``None`` when the receipt shows no amount."""
    scores: dict[int, float] = {}
    seen: dict[int, int] = {}
    cash: list[int] = []
    change: list[int] = []
    rounding: list[int] = []
    median_height = statistics.median(row.height for row in rows) if rows else 0.0
    in_summary = False
    for index, row in enumerate(rows):
        text = row.text
        if _SUMMARY.search(text):
            in_summary = True
        signed = amounts_in(text) or _amount_on_next_row(rows, index, text)
        if not signed:
            continue
        # A stray dash before cash or change ("Cash -50.00") is ruling, not a sign.
        value = abs(signed[-1])
        if _ROUNDING.search(text):
            rounding.append(signed[-1])
        if _CASH.search(text) and not _CHANGE.search(text):
            cash.append(value)
        elif _CHANGE.search(text):
            change.append(value)
        if signed[-1] < 0:
            continue
        weight = 0.0
        if in_summary:
            weight = -1.0
        elif _FINAL_TOTAL.search(text) and not _excluded_final(text):
            weight = 4.0
        elif _TOTAL.search(text) and not _NOT_TOTAL.search(text):
            weight = 3.0
        if weight >= 0 and row.height >= 1.6 * median_height and len(signed) == 1:
            weight += 1.5
        scores[value] = scores.get(value, 0.0) + weight
        seen[value] = seen.get(value, 0) + 1
    if not scores:
        return None
    for value, count in seen.items():
        if scores[value] > 0:
            # The bill is often printed again (large, or as exact cash paid).
            scores[value] += 0.5 * (count - 1)
    for paid in cash:
        for returned in change:
            if 0 < paid - returned in scores:
                scores[paid - returned] += 4.5
    for adjustment in rounding:
        for value in list(scores):
            rounded = value + adjustment
            if adjustment and scores[value] > 0 and rounded in scores:
                # Both the pre-rounding and the rounded total are printed: pay the rounded one.
                scores[rounded] = max(scores[rounded], scores[value]) + 1.0
    best = max(scores.values())
    if best <= 0:
        # Nothing labelled: the largest amount printed is the best remaining guess.
        return max(scores)
    # Among equally supported values, the larger one: totals include what precedes them.
    return max(value for value, score in scores.items() if score == best)


def _excluded_final(text: str) -> bool:
    """A total-sounding row that is really a tax base or a tax note."""
    return bool(
        re.search(r"excl|before|supplies|includ|^\W*(?:gst|tax|vat|iva|sst)\b", text, re.IGNORECASE)
    )


def _amount_on_next_row(rows: Sequence[Row], index: int, text: str) -> list[int]:
    """A label whose amount wrapped onto the next row ("TOTAL" / "RM 12.00")."""
    if not (_TOTAL.search(text) or _FINAL_TOTAL.search(text)) or index + 1 >= len(rows):
        return []
    following = rows[index + 1].text
    if re.search(r"[a-z]{3}", following.replace("RM", ""), re.IGNORECASE):
        return []
    return [v for v in amounts_in(following) if v >= 0]


# ---------------------------------------------------------------- date

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january", "januari"),
            ("feb", "february", "februari"),
            ("mar", "march", "mac"),
            ("apr", "april"),
            ("may", "mei"),
            ("jun", "june"),
            ("jul", "july", "julai"),
            ("aug", "august", "ogos", "ogo"),
            ("sep", "sept", "september"),
            ("oct", "october", "okt", "oktober"),
            ("nov", "november"),
            ("dec", "december", "dis", "disember"),
        ],
        start=1,
    )
    for name in names
}
_MONTH_NAME = r"(?P<mon>[A-Za-z]{3,9})\.?"
_DATE_PATTERNS = [
    # 2018-03-30, 2018/03/30
    re.compile(
        r"(?<![\w.])(?P<y>(?:19|20)\d\d)(?P<s>[-/.])(?P<a>\d{1,2})(?P=s)(?P<b>\d{1,2})(?!\d)"
    ),
    # 25/12/2018, 12-28-2017, 30.03.18 (one separator throughout, so "19- 24/07" is no date)
    re.compile(
        r"(?<![\w.,])(?P<a>\d{1,2})(?P<s>\s?[-/.]\s?)(?P<b>\d{1,2})(?P=s)(?P<y>(?:19|20)?\d\d)(?![\d.,]?\d)"
    ),
    # 30 MAR 2018, 30-Mar-18, 30Mar2018
    re.compile(
        rf"(?<![\w.])(?P<d>\d{{1,2}})(?:st|nd|rd|th)?[\s\-/.,]*{_MONTH_NAME}[\s\-/.,']*(?P<y>(?:19|20)?\d\d)(?!\d)"
    ),
    # Mar 30, 2018
    re.compile(
        rf"\b{_MONTH_NAME}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d\d)(?!\d)"
    ),
]


@dataclass(frozen=True, slots=True)
class _DateFound:
    row: int
    labelled: bool
    year: int
    first: int
    second: int
    month_named: bool


def parse_date(text: str, month_first: bool = False) -> str | None:
    """The first date in ``text`` as ``YYYY-MM-DD``, or ``None`` (``30 MAR 2018`` → ``2018-03-30``)."""
    found = _dates_in(text, 0, False)
    return _resolve(found[0], month_first) if found else None


def find_date(rows: Sequence[Row], currency: str) -> str | None:
    """The purchase date: a row labelled as a date first, otherwise the first date printed."""
    found = [
        hit
        for index, row in enumerate(rows)
        for hit in _dates_in(row.text, index, bool(re.search(r"date|tarikh", row.text, re.I)))
    ]
    if not found:
        return None
    month_first = currency == "USD" or any(
        not hit.month_named
        and 12 < hit.second <= 31
        and 1 <= hit.first <= 12
        and _resolve(hit, True)
        for hit in found
    )
    ordered = sorted(found, key=lambda hit: (not hit.labelled, hit.row))
    for hit in ordered:
        resolved = _resolve(hit, month_first)
        if resolved:
            return resolved
    return None


def _dates_in(text: str, row: int, labelled: bool) -> list[_DateFound]:
    hits: list[tuple[int, _DateFound]] = []
    for number, pattern in enumerate(_DATE_PATTERNS):
        for match in pattern.finditer(text):
            groups = match.groupdict()
            year = int(groups["y"])
            year = year + 2000 if year < 100 else year
            if "mon" in groups and groups["mon"] is not None:
                month = _MONTHS.get(groups["mon"].lower())
                if month is None:
                    continue
                hit = _DateFound(row, labelled, year, int(groups["d"]), month, True)
            elif number == 0:
                hit = _DateFound(row, labelled, year, int(groups["b"]), int(groups["a"]), True)
            else:
                hit = _DateFound(row, labelled, year, int(groups["a"]), int(groups["b"]), False)
            hits.append((match.start(), hit))
    return [hit for _, hit in sorted(hits, key=lambda pair: pair[0])]


def _resolve(hit: _DateFound, month_first: bool) -> str | None:
    """``YYYY-MM-DD`` for a found date, or ``None`` when it is not a real date."""
    day, month = hit.first, hit.second
    if not hit.month_named and (month > 12 or (month_first and day <= 12)):
        day, month = month, day
    if not 1995 <= hit.year <= date.today().year + 1:
        return None
    try:
        return date(hit.year, month, day).isoformat()
    except ValueError:
        return None


# ---------------------------------------------------------------- currency

_CURRENCY_MARKS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\b(MYR|SGD|USD|EUR|GBP|AUD|NZD|CAD|HKD|JPY|CNY|IDR|THB|PHP|INR)\b"), ""),
    (re.compile(r"S\$|SGD"), "SGD"),
    (re.compile(r"A\$"), "AUD"),
    (re.compile(r"HK\$"), "HKD"),
    (re.compile(r"C\$|CA\$"), "CAD"),
    (re.compile(r"(?<![A-Z])RM\s?\d|\bRM\b|\(RM\)"), "MYR"),
    (re.compile(r"€|\d,\d\d\s?EUR"), "EUR"),
    (re.compile(r"£"), "GBP"),
    (re.compile(r"₹|\bRs\.?\s?\d"), "INR"),
    (re.compile(r"¥|円"), "JPY"),
    (re.compile(r"฿"), "THB"),
    (re.compile(r"₱"), "PHP"),
    (re.compile(r"\bRp\.?\s?\d"), "IDR"),
]
_MALAYSIA = re.compile(
    r"malaysia|sdn\.?\s*bhd|\bbhd\b|\bjalan\b|\bjln\b|selangor|johor|kuala\s*lumpur|"
    r"penang|pulau\s*pinang|perak|melaka|sabah|sarawak|kedah|pahang|negeri\s*sembilan|"
    r"putrajaya|shah\s*alam|petaling|\bgst\s*(?:reg|id)",
    re.IGNORECASE,
)
_SINGAPORE = re.compile(r"singapore|\bpte\.?\s*ltd", re.IGNORECASE)

DEFAULT_CURRENCY = "MYR"


def infer_currency(text: str, default: str = DEFAULT_CURRENCY) -> str:
    """The receipt's ISO 4217 currency.

    In order: an explicit code or unambiguous sign (``MYR``, ``RM`` → MYR, ``S$`` →
    SGD, ``€``, ``£`` …); then where the shop is (a Malaysian address or company
    suffix → MYR, Singapore → SGD), which also settles a bare ``$``, since Malaysian
    tills often print ``$`` for ringgit; then a bare ``$`` → USD; otherwise
    ``default``: the business's currency, which the receipt tool passes from the profile
    (MYR only for callers that give none: the receipts this reader is tuned on).
    """
    for pattern, code in _CURRENCY_MARKS:
        match = pattern.search(text)
        if match:
            return code or match.group(1)
    if _MALAYSIA.search(text):
        return "MYR"
    if _SINGAPORE.search(text):
        return "SGD"
    if "$" in text:
        return "USD"
    return default


# ---------------------------------------------------------------- items

_HEADER = re.compile(r"\b(item|description|desc|qty|quantity|product|particulars)\b", re.I)
_END_OF_ITEMS = re.compile(
    r"t[o0c][tl][a4][li1]|sub\s*-?\s*total|gst|tax|rounding|cash|change|nett?\b", re.I
)
_QUANTITY = re.compile(r"^(?:x\s?)?(\d{1,3})(?:\s?x|\s?pcs?|\s?@.*)?$", re.I)
_LEADING_QUANTITY = re.compile(r"^(\d{1,2})\s+(?=[A-Za-z])")
_UNIT_PRICE_ROW = re.compile(r"^\s*@|^(\d+)\s*[xX]\s*(?:RM|\$)?\s*\d", re.I)
_TAX_CODE = re.compile(r"^(?:SR|ZR)\s*[.:\-]?\s+|\s+\*?(?:SR|ZR|S|Z)$")
_TRAILING_AMOUNT = re.compile(_AMOUNT.pattern + r"\s*\S{0,2}$")


def find_items(rows: Sequence[Row]) -> list[ReceiptItem]:
    """Purchased lines: rows after the column header (or the date) and before the totals.

    A row with an amount is an item; its name is on that row, or, when the row only
    has codes (a barcode, a tax code), on the text-only row just before or after it.
    """
    start = _items_start(rows)
    if start is None:
        return []
    items: list[ReceiptItem] = []
    pending = ""
    consumed = last_row = -1
    for index in range(start, len(rows)):
        if index == consumed:
            continue
        cells = rows[index].cells
        text = rows[index].text
        amounts = [v for v in amounts_in(text) if v >= 0]
        if amounts and _END_OF_ITEMS.search(text):
            break
        name = _clean_name(" ".join(c.text for c in cells if re.search(r"[A-Za-z]{2}", c.text)))
        if not amounts:
            if _is_name(name) or not pending:
                pending = name
            continue
        quantity = next(
            (int(m.group(1)) for c in cells if (m := _QUANTITY.match(c.text.strip()))), 0
        )
        unit_price = _UNIT_PRICE_ROW.search(text)
        if unit_price and len(amounts) == 1 and not _is_name(name):
            # "2 X RM 1.75" under an item: its quantity, not a new line.
            quantity = quantity or int(unit_price.group(1) or 0)
            if items and last_row == index - 1 and quantity > 1:
                items[-1] = items[-1].model_copy(update={"quantity": quantity})
            continue
        if not _is_name(name):
            if pending:
                name = pending
            elif index + 1 < len(rows) and not amounts_in(rows[index + 1].text):
                name = _clean_name(rows[index + 1].text)
                consumed = index + 1
            elif items and last_row == index - 1:
                # The row above was the name with its unit price; this row has the total.
                items[-1] = ReceiptItem(
                    name=items[-1].name, quantity=max(1, quantity), price_in_cents=amounts[-1]
                )
                last_row = index
                continue
        pending = ""
        leading = _LEADING_QUANTITY.match(name)
        if leading:
            name = name[leading.end() :]
            quantity = quantity or int(leading.group(1))
        if _is_name(name):
            items.append(
                ReceiptItem(name=name, quantity=max(1, quantity), price_in_cents=amounts[-1])
            )
            last_row = index
    return items


def _items_start(rows: Sequence[Row]) -> int | None:
    """The first row after the column header, or after the first dated row."""
    for marker in (_HEADER, None):
        for index, row in enumerate(rows):
            if marker.search(row.text) if marker else _dates_in(row.text, index, False):
                return index + 1
    return None


def _clean_name(text: str) -> str:
    """A name without its tax code, trailing unit price or stray punctuation."""
    text = _TRAILING_AMOUNT.sub("", text.strip())
    return _TAX_CODE.sub("", text).strip(" :-*|")


def _is_name(text: str) -> bool:
    """Words, not just codes: at least one run of three letters other than RM."""
    return bool(re.search(r"[A-Za-z]{3}", text.replace("RM", "")))


# ---------------------------------------------------------------- receipt


def parse_receipt(lines: Sequence[OcrLine], default_currency: str = DEFAULT_CURRENCY) -> Receipt:
    """Read a ``Receipt`` from OCR lines; raises ``ReceiptReadError`` when no total is printed."""
    rows = group_rows(lines)
    total = find_total(rows)
    if total is None:
        raise ReceiptReadError(
            "I couldn't find any amounts on that picture. Please send a sharp, well-lit "
            "photo of the whole receipt, taken straight on."
        )
    full_text = "\n".join(row.text for row in rows)
    currency = infer_currency(full_text, default_currency)
    return Receipt(
        date=find_date(rows, currency),
        items=find_items(rows),
        currency=currency,
        total_in_cents=total,
    )
