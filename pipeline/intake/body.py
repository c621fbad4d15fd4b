"""What every intake endpoint checks of a request before it trusts it, cheapest first.

Each check refuses with a 4xx (see ``errors.py``) before the next, more expensive step runs:

- a header that must be a number holds plain ASCII digits, and few of them (``str.isdigit`` also
  takes ``"²"``, which ``int`` refuses);
- the body is JSON by its ``Content-Type`` (415 otherwise), in a coding the service can undo (415);
- the body is at most so large, read no further than that (413);
- the body nests arrays and objects at most ``MAX_JSON_DEPTH`` deep, found by a scan of its bytes
  before any recursive parse (400);
- the body is JSON in the strict sense of RFC 8259 (400): UTF-8, no ``NaN`` or ``Infinity``, no number
  too large to be finite, no lone UTF-16 surrogate (``"\\ud800"``), which no UTF-8 text can carry;
- the fields that identify an event or name it have the JSON type they must (400, naming the field).

So whatever is accepted can be written as JSON again, and read back by the loaders downstream.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from fastapi import Request

from pipeline.intake.errors import Refused

# Webhooks and Segment calls are shallow: a Segment call's properties nest a few levels at most.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPES = ("application/json",)
UTF8_CHARSETS = ("utf-8", "utf8")
# A JSON string, escapes included, up to its closing quote or the end of the body; possessive, so a
# body of many unterminated strings costs one pass, not one per quote.
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_A_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_DEPTH_STEP = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 and, read as signed bytes, -1


def plain_int(text: str | None, max_digits: int) -> int | None:
    """The number a header holds when it is ASCII digits only, at most ``max_digits`` of them; else ``None``."""
    if text and len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None


def shown(value: object, limit: int = 60) -> str:
    """A value as a refusal quotes it: short, whatever the sender put in it."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def check_json_content_type(
    request: Request, accepted: tuple[str, ...] = JSON_MEDIA_TYPES, gzipped_too: bool = False
) -> None:
    """415 unless the body is declared as one of ``accepted`` (parameters such as ``charset=utf-8``
    allowed) in UTF-8, and is sent plain (or gzipped, when ``gzipped_too``)."""
    declared = request.headers.get("content-type")
    media_type, *parameters = (declared or "").split(";")
    if media_type.strip().lower() not in accepted:
        raise Refused(
            415,
            f"the body must be sent as Content-Type {' or '.join(accepted)}"
            + (f", not {shown(declared)}" if declared else ", and this request has none"),
        )
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in UTF8_CHARSETS:
            raise Refused(415, f"JSON is read as UTF-8, not as charset {shown(value.strip())}")
    coding = request.headers.get("content-encoding", "").strip().lower()
    if coding not in ("", "identity", *(("gzip",) if gzipped_too else ())):
        raise Refused(
            415,
            f"Content-Encoding {shown(coding)} is not supported: send the body "
            + ("plain or gzipped" if gzipped_too else "plain"),
        )


async def read_body_within(request: Request, limit: int, too_large: Refused) -> bytes:
    """The body, refused with ``too_large`` as soon as it passes ``limit`` bytes (a declared length is
    believed first, so an oversize body is refused before it is read)."""
    declared = plain_int(request.headers.get("content-length"), max_digits=18)
    if declared is not None and declared > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def nesting_depth(body: bytes) -> int:
    """How deep the body's arrays and objects nest, brackets inside strings not counted: at least as
    deep as any parser of it gets before it finds the body valid or not. Linear in the body's size."""
    steps = _JSON_STRING.sub(b"", body).translate(_DEPTH_STEP, _NOT_A_BRACKET)
    return max(itertools.accumulate(memoryview(steps).cast("b"), initial=0))


def _why_not_json(error: orjson.JSONDecodeError, body: bytes) -> str:
    where = f"line {error.lineno} column {error.colno}"
    if "surrogate" in error.msg:
        return f"a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which UTF-8 cannot encode ({where})"
    if "infinity" in error.msg:
        return f"a number is too large to be finite ({where})"
    if "UTF-8" in error.msg:
        return "it is not UTF-8 text"
    text = body.decode("utf-8", "replace")
    if text[error.pos : error.pos + 8].startswith(("NaN", "Infinity")) or text[
        max(error.pos - 1, 0) : error.pos + 8
    ].startswith(("-NaN", "-Infinity")):
        return f"NaN and Infinity are not JSON numbers ({where})"
    return f"{error.msg} ({where})"


def parsed_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> object:
    """The body's JSON value, once its nesting is known to be shallow; a 400 saying why it is not JSON.
    orjson refuses what the standard library would let through and could not write back: ``NaN``,
    ``Infinity``, numbers that overflow to infinity, lone surrogates."""
    depth = nesting_depth(body)
    if depth > max_depth:
        raise Refused(400, f"the body nests arrays and objects {depth} levels deep; at most {max_depth} are accepted")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise Refused(400, f"the body is not valid JSON: {_why_not_json(error, body)}") from error


@dataclass(frozen=True)
class Kind:
    """A JSON type a field must have, by the name a refusal gives it."""

    name: str
    accepts: Callable[[object], bool]


def _is_integer(value: object) -> bool:
    # Booleans are ints to Python; ids and times in ms are signed 64-bit integers wherever they go.
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


STRING = Kind("a string", lambda value: isinstance(value, str))
INTEGER = Kind("an integer", _is_integer)
STRING_OR_NUMBER = Kind(
    "a string or a number", lambda value: isinstance(value, (str, int, float)) and not isinstance(value, bool)
)
OBJECT = Kind("a JSON object", lambda value: isinstance(value, dict))
INTEGERS = Kind("an array of integers", lambda value: isinstance(value, list) and all(map(_is_integer, value)))


def json_type(value: object) -> str:
    """What a parsed JSON value is, as a refusal names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "a number"


def check_fields(event: dict, where: str, required: dict[str, Kind], optional: dict[str, Kind] | None = None) -> None:
    """400 naming the first field that is missing, empty or of the wrong type; an optional field may be
    absent or null."""
    for name, kind in required.items():
        value = event.get(name)
        if not kind.accepts(value) or value == "":
            raise Refused(
                400,
                f"{where} needs {name} as {kind.name}"
                + (f", not {json_type(value)}" if value not in (None, "") else ""),
            )
    for name, kind in (optional or {}).items():
        value = event.get(name)
        if value is not None and not kind.accepts(value):
            raise Refused(400, f"{where}: {name} must be {kind.name}, not {json_type(value)}")
