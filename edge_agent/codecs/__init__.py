"""Pure codecs of the edge agent: no sockets, clocks, files or logging (STYLE.md 6).

`edge_agent.codecs` turns raw Modbus registers into values and back, for every data type and byte
order a device profile may declare, and shows a register pair under all four byte orders for the
commissioning CLI's raw view.
"""

from edge_agent.codecs._registers import (
    BYTE_ORDER_ALIASES,
    BYTE_ORDERS,
    DATA_TYPE_ALIASES,
    DATA_TYPES,
    FLOAT_TYPES,
    INTEGER_TYPES,
    NUMERIC_TYPES,
    ByteOrder,
    DataType,
    Decoded,
    RawView,
    StringEncoding,
    StringPadding,
    canonical_byte_order,
    canonical_data_type,
    decode,
    encode,
    field_mask,
    format_raw_views,
    make_decoder,
    make_encoder,
    raw_views,
    word_count,
)

# Sorted case-insensitively, as tests/unit/test_public_api.py checks for packages (httpx style).
__all__ = [  # noqa: RUF022 - sorted with key=str.casefold, the project rule (STYLE.md 1)
    "BYTE_ORDER_ALIASES",
    "BYTE_ORDERS",
    "ByteOrder",
    "canonical_byte_order",
    "canonical_data_type",
    "DATA_TYPE_ALIASES",
    "DATA_TYPES",
    "DataType",
    "decode",
    "Decoded",
    "encode",
    "field_mask",
    "FLOAT_TYPES",
    "format_raw_views",
    "INTEGER_TYPES",
    "make_decoder",
    "make_encoder",
    "NUMERIC_TYPES",
    "raw_views",
    "RawView",
    "StringEncoding",
    "StringPadding",
    "word_count",
]
