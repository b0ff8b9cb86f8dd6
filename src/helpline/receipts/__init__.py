"""Read a receipt photo into validated structured data (vision model or offline OCR).

Importing this package is cheap: the OCR engine and its models load on first use.
"""

from helpline.receipts.reader import read_receipt
from helpline.receipts.schema import Receipt, ReceiptItem, ReceiptReadError, receipt_json_schema
from helpline.receipts.vision import read_receipt_with_model

__all__ = [
    "Receipt",
    "ReceiptItem",
    "ReceiptReadError",
    "read_receipt",
    "read_receipt_with_model",
    "receipt_json_schema",
]
