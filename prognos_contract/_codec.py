"""Bytes to JSON and back, strictly and within bounds, for every payload of the contract.

Rules:

- Gzip is recognised by the content type ``application/json+gzip`` or by the magic bytes
  ``1f 8b`` (JSON text never starts with byte ``1f``). One gzip member only; its CRC32 and
  length are checked.
- Nothing is inflated beyond ``MAX_PAYLOAD_BYTES + 1`` bytes: a gzip bomb costs at most that.
- JSON is RFC 8259, strictly: UTF-8 without BOM, no ``NaN``/``Infinity`` literals, no duplicate
  keys, no absurdly long number literals. These reject the whole payload: a parser hook knows no
  location.
"""

import gzip
import json
import zlib
from typing import Any

from prognos_contract._errors import ContractError, show
from prognos_contract._rules import MAX_PAYLOAD_BYTES

CONTENT_TYPE_JSON = "application/json"
"""MQTT 5 content type of a plain JSON payload."""
CONTENT_TYPE_JSON_GZIP = "application/json+gzip"
"""MQTT 5 content type of a gzip-compressed JSON payload."""

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
# An int64 has at most 20 characters; longer literals are rejected before int() does quadratic work.
_MAX_NUMBER_CHARS = 100


def dump(document: dict[str, Any], *, compress: bool) -> bytes:
    """Return ``document`` as compact UTF-8 JSON, gzipped if asked, or raise ``too_large``."""
    data = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            "too_large",
            f"the encoded payload has {len(data)} bytes, at most {MAX_PAYLOAD_BYTES}; split it",
        )
    if compress:
        # mtime=0 makes the bytes deterministic: a redelivered batch is byte-identical.
        return gzip.compress(data, mtime=0)
    return data


def load(payload: bytes, *, content_type: str | None) -> object:
    """Return the JSON value in ``payload``, inflating it first if it is gzip."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            "too_large", f"the payload has {len(payload)} bytes, at most {MAX_PAYLOAD_BYTES}"
        )
    if _is_gzip(payload, content_type):
        payload = _gunzip(payload)
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise ContractError(
            "bad_encoding", f"the payload is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        raise ContractError(
            "invalid_json", f"the payload is not JSON: {exc.msg} at character {exc.pos}"
        ) from None
    except RecursionError:
        raise ContractError("too_deep", "the JSON nesting is too deep to parse") from None


def _is_gzip(payload: bytes, content_type: str | None) -> bool:
    if content_type is not None:
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type == CONTENT_TYPE_JSON_GZIP:
            return True
        if media_type != CONTENT_TYPE_JSON:
            raise ContractError(
                "bad_content_type",
                f"content type {show(content_type)} is neither {CONTENT_TYPE_JSON!r} "
                f"nor {CONTENT_TYPE_JSON_GZIP!r}",
            )
    return payload.startswith(_GZIP_MAGIC)


def _gunzip(payload: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=_GZIP_WBITS)
    try:
        data = inflater.decompress(payload, MAX_PAYLOAD_BYTES + 1)
    except zlib.error as exc:
        raise ContractError("bad_gzip", f"the gzip stream is corrupt: {exc}") from None
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ContractError(
            "too_large", f"the payload inflates to more than {MAX_PAYLOAD_BYTES} bytes"
        )
    # Not limited by max_length, so all input was consumed: no end means it was cut short.
    if not inflater.eof:
        raise ContractError("bad_gzip", "the gzip stream is truncated")
    if inflater.unused_data:
        raise ContractError("bad_gzip", f"{len(inflater.unused_data)} bytes follow the gzip stream")
    return data


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ContractError(
                    "duplicate_key", f"key {show(key)} appears more than once in an object"
                )
            seen.add(key)
    return document


def _reject_constant(literal: str) -> float:
    raise ContractError(
        "non_finite",
        f"{literal} is not JSON (RFC 8259); report a failed read in 'bad', never as {literal}",
    )


def _parse_int(literal: str) -> int:
    if len(literal) > _MAX_NUMBER_CHARS:
        raise ContractError(
            "out_of_range", f"an integer literal of {len(literal)} digits: {show(literal)}"
        )
    return int(literal)
