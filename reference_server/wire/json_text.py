"""Compact JSON encoders built once, for the text every chat request encodes (its canonical hashes, its answer).

``json.JSONEncoder.encode`` builds a new C encoder object on every call (``iterencode`` passes nine settings to
``c_make_encoder`` and defines a closure), about 6,500 CPU instructions before the first byte is written; a chat
request encodes three or four values. :func:`compact_encoder` makes that C encoder once, with the settings
``JSONEncoder.encode`` would pass, so its text is exactly ``JSONEncoder(...).encode(value)``'s. Where the C
accelerator is missing, it is ``JSONEncoder.encode`` itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json import encoder as _encoder
from typing import Any


def compact_encoder(*, sort_keys: bool, ensure_ascii: bool, default: Callable[[Any], Any] | None = None
                    ) -> Callable[[Any], str]:
    """``json.JSONEncoder(separators=(",", ":"), check_circular=False, ...).encode``, made once.

    check_circular is off: the values encoded come from ``json.loads`` or the server, neither of which builds a
    cycle (the check costs a dict insert and delete per list and object).
    """
    encoder = json.JSONEncoder(sort_keys=sort_keys, separators=(",", ":"), ensure_ascii=ensure_ascii, default=default,
                               check_circular=False)
    make = _encoder.c_make_encoder
    if make is None:
        return encoder.encode
    strings = _encoder.encode_basestring_ascii if ensure_ascii else _encoder.encode_basestring
    # The arguments JSONEncoder.iterencode gives c_make_encoder: markers (None: no circular check), default,
    # string encoder, indent, separators, sort_keys, skipkeys, allow_nan.
    chunks = make(None, encoder.default, strings, None, ":", ",", sort_keys, False, True)
    join = "".join
    return lambda value: join(chunks(value, 0))
