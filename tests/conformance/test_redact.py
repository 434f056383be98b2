"""Redaction: credential headers, key-shaped tokens and the configured key never survive."""

from conformance.redact import MASK, Redactor, redact_text

UNIT23_KEY = "unit23-sk-" + "0123456789abcdef" * 3


def test_configured_secret_is_masked_anywhere_in_text():
    r = Redactor(["my-custom-secret-value"])
    assert r.text('{"echo": "my-custom-secret-value!"}') == f'{{"echo": "{MASK}!"}}'


def test_key_shaped_tokens_are_masked_without_configuration():
    text = f"keys sk-abcdefghijklmnop and {UNIT23_KEY} here"
    out = redact_text(text)
    assert "sk-abcdefghijklmnop" not in out and UNIT23_KEY not in out
    assert out.startswith("keys ") and out.endswith(" here")


def test_short_or_ordinary_words_are_left_alone():
    assert redact_text("scikit sk-learn is fine; task-sk") == "scikit sk-learn is fine; task-sk"


def test_bearer_values_are_masked_even_when_unknown():
    assert redact_text("Authorization: Bearer abc.def-ghi") == f"Authorization: Bearer {MASK}"


def test_credential_headers_are_masked_whole_and_others_scanned():
    r = Redactor(["secret-123"])
    out = dict(r.headers({"Authorization": "Bearer x", "api-key": "k", "X-API-Key": "k2",
                          "X-Echo": "got secret-123", "Content-Type": "application/json"}))
    assert out["Authorization"] == out["api-key"] == out["X-API-Key"] == MASK
    assert out["X-Echo"] == f"got {MASK}"
    assert out["Content-Type"] == "application/json"


def test_bytes_redaction_keeps_undecodable_bytes():
    r = Redactor(["secret-123"])
    assert r.bytes(b"\xff data: secret-123\n") == b"\xff data: " + MASK.encode() + b"\n"


def test_longer_secret_masked_whole_when_it_contains_a_shorter_one():
    r = Redactor(["abcd", "abcdefgh"])
    assert r.text("abcdefgh") == MASK
