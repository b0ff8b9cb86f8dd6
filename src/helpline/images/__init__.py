"""Load the images customers share (public links, uploads, local files) safely, and normalise them.

Links are fetched by Helpline itself: http(s) only, public addresses only (checked on every
redirect, and the connection goes to the very address that was checked), with a size cap,
timeouts and an image check. Every refusal is an `ImageError` whose message tells the customer
what went wrong and what to do instead.
"""

from helpline.images.errors import DEFAULT_MAX_BYTES, ImageError
from helpline.images.fetch import AddressPolicy, fetch_image
from helpline.images.load import load_image
from helpline.images.local import read_local_image
from helpline.images.normalize import DEFAULT_MAX_PIXELS, NormalizedImage, normalize_image
from helpline.images.references import find_image_references

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "AddressPolicy",
    "ImageError",
    "NormalizedImage",
    "fetch_image",
    "find_image_references",
    "load_image",
    "normalize_image",
    "read_local_image",
]
