"""Redaction of API keys and other secrets from transcripts, reports, logs and failure messages.

Everything the harness writes to disk or prints passes through a ``Redactor``: a report that leaks the key it
was run with would turn a conformance run into a credential leak.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping

MASK = "[REDACTED]"

# Header names whose whole value is a credential (compared case-insensitively).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"})

# Key-shaped tokens: OpenAI style ``sk-...`` and vendor prefixed ``<vendor>-sk-...`` (e.g. ``unit23-sk-<hex>``).
# Eight or more characters after ``sk-`` so ordinary words like "sk-learn" are left alone.
_KEY_TOKEN = re.compile(r"\b(?:[A-Za-z0-9]+-)?sk-[A-Za-z0-9_\-]{8,}")
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]+")


class Redactor:
    """Masks the configured secrets plus anything that looks like an API key."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Longest first, so a secret that contains another one is masked whole.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        """Return ``value`` with every secret and key-shaped token masked."""
        for secret in self.secrets:
            value = value.replace(secret, MASK)
        value = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", value)
        return _KEY_TOKEN.sub(MASK, value)

    def bytes(self, value: bytes) -> bytes:
        """Byte-level variant for raw bodies (SSE streams); undecodable bytes are kept as they are."""
        return self.text(value.decode("utf-8", errors="surrogateescape")).encode("utf-8", errors="surrogateescape")

    def headers(self, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Header pairs with credential headers masked entirely and other values scanned for keys."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        out = []
        for name, value in items:
            out.append((name, MASK if name.lower() in SECRET_HEADERS else self.text(str(value))))
        return out


_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.]{7,}")


def masked_fingerprints(redactor: Redactor, headers: Iterable[tuple[str, str]]) -> list[str]:
    """``sha256:`` fingerprints of ``Bearer <token>`` for every token of the header values the redactor masks: a
    check can then tell which credential a gateway echoed (DISCLOSURE-002, against the upstream journal's
    fingerprints) without the transcript ever showing it."""
    prints = set()
    for name, value in headers:
        value = str(value)
        if name.lower() in SECRET_HEADERS or redactor.text(value) != value:
            prints.update("sha256:" + hashlib.sha256(f"Bearer {t}".encode()).hexdigest()
                          for t in _TOKEN.findall(value))
    return sorted(prints)


def redact_text(value: str, secrets: Iterable[str | None] = ()) -> str:
    """One-shot helper: ``Redactor(secrets).text(value)``."""
    return Redactor(secrets).text(value)
