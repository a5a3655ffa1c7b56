"""Every size limit ingest enforces, in one place.

They bound what one request can cost downstream (stream entry size, audit row,
rule matching) and mirror the ``Event`` model's own field limits, so an event
that passes here never fails model validation later.
"""

from __future__ import annotations

MAX_MESSAGE_BYTES = 64 * 1024  # UTF-8 bytes; the model's max_length (chars) is implied
MAX_HOSTNAME_CHARS = 255
MAX_OID_CHARS = 512
MAX_VARBINDS = 1024
MAX_VARBIND_TYPE_CHARS = 64
MAX_VARBIND_VALUE_CHARS = 8192
MAX_SOURCE_TYPE_CHARS = 128
MAX_CORRELATION_ID_CHARS = 128
MAX_SOURCE_CHARS = 1024
MAX_ID_CHARS = 1024

# attributes: the sender's extra fields, kept as JSON.
MAX_ATTRIBUTES_BYTES = 32 * 1024  # serialized (compact JSON)
MAX_ATTRIBUTES_DEPTH = 8  # {"a": {"b": 1}} has depth 2
MAX_ATTRIBUTES_NODES = 1024  # values and containers, counted recursively
MAX_ATTRIBUTE_KEY_CHARS = 256

# A message built from a trap's OID and varbinds is cut here: the full
# varbinds travel in the event anyway.
MAX_TRAP_SUMMARY_CHARS = 1024

# Items in one legacy array body or one Alertmanager notification.
DEFAULT_MAX_BATCH = 1000
