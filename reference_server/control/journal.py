"""Request journal: the last N requests the server answered, for client developers to inspect.

``GET /_mock/requests`` shows what a client really sent (headers, JSON body) and what it got back (status,
request id and, with fault tracing, the faults it consulted). Secrets never leave the journal in clear:
``Authorization`` and key-like headers are redacted the way OpenAI prints keys in its own errors (``Bearer sk-abc***``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import threading
from collections import deque
from typing import Any

# Headers whose value is a credential. Compared lower-case.
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization", "cookie"})
# Bodies larger than this are summarised, so a full ring of huge requests cannot exhaust memory.
MAX_BODY_CHARS = 64 * 1024


def redact_secret(value: str) -> str:
    """``Bearer sk-abcdef123`` -> ``Bearer sk-abc***``; keeps the scheme and the first 6 characters of the secret."""
    scheme, sep, secret = value.partition(" ")
    if not sep:
        scheme, secret = "", value
    shown = secret[:6] + "***" if secret else ""
    return f"{scheme} {shown}" if scheme else shown


def environ_headers(environ: Any) -> dict[str, str]:
    """The request headers of a WSGI environ by environ key (``HTTP_X_MOCK_PROVIDER``; ``render`` sorts them by key
    and names them the way werkzeug's ``request.headers`` does); only strings are kept, so a record holds no socket
    or stream.

    Runs on every request, where a Python test of each of the twenty to thirty environ keys costs more than the
    rest of the journal entry: which keys are headers is worked out once per layout of the environ (its keys in
    order: a client sends its headers in the same order every time, so a server sees few layouts), and only the
    values are read per request.
    """
    layout = tuple(environ)
    found = _LAYOUTS.get(layout)
    if found is None:
        names = environ.keys() - _SERVER_KEYS
        found = (tuple(k for k in names if k[:5] == "HTTP_"), tuple(k for k in _CONTENT_KEYS if k in names))
        if len(_LAYOUTS) < LAYOUTS_KEPT:
            _LAYOUTS[layout] = found
    headers, content = found
    out = {k: environ[k] for k in headers}
    for k in content:
        if environ[k]:  # an empty CONTENT_TYPE/CONTENT_LENGTH is the server's placeholder, not a header sent
            out[k] = environ[k]
    return out


# environ layout (its keys in order) -> (its HTTP_* keys, its CONTENT_* keys); a bounded number of layouts is kept
_LAYOUTS: dict[tuple[Any, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
LAYOUTS_KEPT = 256
_CONTENT_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH")
# Environ keys that are never request headers: PEP 3333's, and those of the servers this project runs under
# (gunicorn, werkzeug's). Only a shortcut: anything else is still tested by name above.
_SERVER_KEYS = frozenset({
    "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL",
    "REMOTE_ADDR", "REMOTE_PORT", "REMOTE_HOST", "REQUEST_URI", "RAW_URI", "SERVER_SOFTWARE",
    "wsgi.version", "wsgi.url_scheme", "wsgi.input", "wsgi.errors", "wsgi.multithread", "wsgi.multiprocess",
    "wsgi.run_once", "wsgi.file_wrapper", "wsgi.input_terminated", "gunicorn.socket", "werkzeug.request",
    "werkzeug.socket", "werkzeug.debug.preserve_context", "asgi.scope",
})


def _header_name(environ_key: str) -> str:
    return environ_key.removeprefix("HTTP_").replace("_", "-").title()


def redact_headers(headers: Any) -> dict[str, str]:
    """A plain dict of the headers with credentials redacted."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        out[name] = redact_secret(value) if name.lower() in SECRET_HEADERS else value
    return out


class RequestJournal:
    """Bounded, thread-safe ring buffer of request records (newest last)."""

    def __init__(self, size: int = 1000) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=max(1, size))
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> None:
        """Append one record; the oldest falls out when the buffer is full."""
        with self._lock:
            self._entries.append(entry)

    def entries(self, limit: int | None = None) -> list[dict[str, Any]]:
        """A snapshot of the newest ``limit`` records (all when ``None``), oldest first, rendered for display."""
        with self._lock:
            items = list(self._entries)
        return [render(entry) for entry in (items[-limit:] if limit else items)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def summarise_body(raw: bytes, parsed: Any) -> Any:
    """The JSON body as parsed, or a short description when it is not JSON or too large to keep."""
    if len(raw) > MAX_BODY_CHARS:
        return {"_truncated": True, "bytes": len(raw)}
    if parsed is not None:
        return parsed
    if not raw:
        return None
    return {"_non_json": True, "bytes": len(raw)}


def render(entry: dict[str, Any]) -> dict[str, Any]:
    """A recorded exchange as shown by ``GET /_mock/requests``.

    Recording keeps the raw pieces (time, header pairs, body bytes) and this does the redaction, parsing and
    formatting when somebody reads the journal, so the cost stays off the request path.
    """
    if "raw_body" not in entry:  # already rendered (or recorded by a caller that did the work itself)
        return entry
    out = {k: v for k, v in entry.items() if k not in RAW_FIELDS}
    if "trace" in entry:  # fault tracing: the live set of a request that may still be streaming, copied now
        out["faults_consulted"] = sorted(entry["trace"].copy())
    out["timestamp"] = dt.datetime.fromtimestamp(entry["time"], dt.timezone.utc).isoformat(timespec="milliseconds")
    if "raw_environ" in entry:  # recorded by the request path: names are converted here, off that path
        pairs = [(_header_name(k), v) for k, v in sorted(entry["raw_environ"].items())
                 if k not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")]
    else:
        pairs = entry["raw_headers"]
    out["headers"] = redact_headers(dict(pairs))
    raw = entry["raw_body"]
    parsed = None
    if raw and len(raw) <= MAX_BODY_CHARS:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    out["body"] = {"_truncated": True, "bytes": entry["body_bytes"]} if raw is None else summarise_body(raw, parsed)
    out["id"], out["at"] = entry.get("request_id"), entry["time"]
    for name in ("route", "nonce", "attempt", "rule"):
        out.setdefault(name, None)
    out["authorization"] = authorization_summary(dict(pairs).get("Authorization"))
    if "raw_response_headers" in entry:
        out["response"] = response_summary(entry)
    return out


# What ``render`` replaces by its own fields.
RAW_FIELDS = frozenset({"raw_body", "raw_headers", "raw_environ", "time", "body_bytes", "trace",
                        "raw_response_headers", "raw_response_body", "response_usage", "stream"})
WELL_FORMED_BEARER = re.compile(r"^Bearer [\x21-\x7e]+$")


def fingerprint(value: str) -> str:
    """``sha256:<hex>`` of a raw credential value: compare credentials without ever showing one."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def usage_of(body: bytes) -> dict[str, Any] | None:
    """The top-level ``usage`` object of a JSON answer (None when it has none)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    usage = parsed.get("usage") if isinstance(parsed, dict) else None
    return usage if isinstance(usage, dict) else None


def authorization_summary(value: str | None) -> dict[str, Any]:
    """What the journal says of an ``Authorization`` header: present, scheme, well formed, fingerprint."""
    if value is None:
        return {"present": False, "scheme": None, "well_formed": False, "fingerprint": None}
    scheme = value.split(" ", 1)[0] if " " in value else None
    return {"present": True, "scheme": scheme, "well_formed": bool(WELL_FORMED_BEARER.match(value)),
            "fingerprint": fingerprint(value)}


def response_summary(entry: dict[str, Any]) -> dict[str, Any]:
    """Status, headers, usage and (for event streams) the chunk count of what was sent back."""
    own, wire = entry["raw_response_headers"]
    headers = dict(own.items())
    for group in wire.values():
        headers.update(group)
    usage = entry.get("response_usage")
    stream = entry.get("stream")
    if stream is not None:
        stream = dict(stream)
        usage = stream.pop("usage", None)
    elif entry.get("raw_response_body"):
        usage = usage_of(entry["raw_response_body"])
    return {"status": entry["status"], "headers": redact_headers(headers), "usage": usage, "stream": stream}
