"""Uploads: PDF, PNG and JPEG, each parsed whole before it is accepted.

Looking at the first bytes proves nothing; a truncated or crafted file can start right. A PDF
is opened with pyHanko's reader and every object of every page is resolved; an image is fully
decoded with Pillow (a dependency of WeasyPrint). The declared type must match what the file is.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils.generic import DictionaryObject, IndirectObject, StreamObject
from pyhanko.pdf_utils.reader import PdfFileReader

from courtlink.errors import InvalidInput

__all__ = ["ALLOWED", "inspect_upload"]

ALLOWED = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG"}
MAX_PIXELS = 60_000_000  # a decompression bomb guard: about 8000 x 7500


def _walk(obj: object, seen: set[int], depth: int = 0) -> None:
    if depth > 64:
        raise InvalidInput("PDF nesting is too deep")
    if isinstance(obj, IndirectObject):
        if obj.idnum in seen:
            return
        seen.add(obj.idnum)
        obj = obj.get_object()
    if isinstance(obj, DictionaryObject):
        for value in obj.values():
            _walk(value, seen, depth + 1)
    elif isinstance(obj, list):
        for value in obj:
            _walk(value, seen, depth + 1)
    if isinstance(obj, StreamObject):
        if obj.get("/Subtype") == "/Image":
            # Image predictors trip pyHanko's decoder on valid files; the raw bytes must be
            # present and complete (/Length) all the same.
            len(obj.encoded_data)
        else:
            len(obj.data)  # decoding a content or font stream proves it is whole


def _check_pdf(data: bytes) -> int:
    try:
        # Not strict: real scanners write harmless quirks (Pillow, for one, an odd generation
        # number for object 0); every object is still resolved and every stream decoded.
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        pages = reader.root["/Pages"]
        count = int(pages["/Count"])
        if count < 1:
            raise InvalidInput("the PDF has no pages")
        seen: set[int] = set()
        for index in range(count):
            page, _ = reader.find_page_for_modification(index)
            _walk(page, seen)
        return count
    except InvalidInput:
        raise
    except Exception as exc:  # pyHanko signals a broken file with many exception types
        raise InvalidInput(
            f"the PDF cannot be read ({type(exc).__name__})", code="bad_file"
        ) from None


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_image(data: bytes, expected: str) -> tuple[int, int]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                # What the file is comes first: a PNG sent as a JPEG is not "an incomplete JPEG".
                if image.format != expected:
                    raise InvalidInput(
                        f"the file is {image.format}, not {expected}", code="bad_file"
                    )
                # Decoders forgive a missing tail (they pad the picture); a whole file has one.
                if expected == "PNG" and not data.endswith(_PNG_END):
                    raise InvalidInput("the PNG file is incomplete (no end chunk)", code="bad_file")
                if expected == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                    raise InvalidInput(
                        "the JPEG file is incomplete (no end marker)", code="bad_file"
                    )
                if image.width * image.height > MAX_PIXELS:
                    raise InvalidInput("the image is too large", code="bad_file")
                image.verify()  # chunk structure and checksums (PNG), markers (JPEG)
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every pixel: a truncated file fails here
                return image.width, image.height
    except InvalidInput:
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"the file is not a {expected} image", code="bad_file") from None
    except (
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise InvalidInput(
            f"the image cannot be decoded ({type(exc).__name__})", code="bad_file"
        ) from None


def inspect_upload(data: bytes, media_type: str, max_bytes: int) -> str:
    """Return the checked media type, or raise InvalidInput with a reason people understand."""
    media_type = media_type.split(";")[0].strip().lower()
    if media_type not in ALLOWED:
        raise InvalidInput("only PDF, PNG and JPEG files are accepted", code="unsupported_type")
    if not data:
        raise InvalidInput("the file is empty", code="bad_file")
    if len(data) > max_bytes:
        raise InvalidInput(
            f"the file is larger than {max_bytes // (1024 * 1024)} MB", code="too_large"
        )
    if media_type == "application/pdf":
        _check_pdf(data)
    else:
        _check_image(data, ALLOWED[media_type])
    return media_type
