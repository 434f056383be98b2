"""Valid alternative behaviours the contract allows. The conformance suite must pass against every one of them:
they are the no-false-alarm controls, as faults are the must-catch controls.

Code asks ``config.variant("sse-crlf")``; ``--variant NAME`` on the CLI switches one on.
"""

from __future__ import annotations

VARIANTS: dict[str, str] = {
    "sse-no-space": 'SSE fields written "data:{...}" without the optional space after the colon.',
    "sse-crlf": "SSE lines end with CRLF instead of LF.",
    "sse-cr": "SSE lines end with a lone CR.",
    "sse-keepalive": 'A ": keep-alive" comment line between events (and before the first), as proxies send.',
    "sse-charset-off": "Streams are sent as text/event-stream without the charset parameter.",
    "extra-fields": "Responses and chunks carry fields the spec does not list (system_fingerprint, obfuscation, "
    "reasoning_content: null, service_tier, provider).",
    "usage-omitted": 'Chunks other than the usage chunk leave "usage" out instead of sending null.',
    "header-case": "Response header names in unusual letter case (X-REQUEST-ID, CONTENT-type, ...).",
    "text-plain-served": "A body sent as text/plain is read as the JSON it holds and served (ERRORS-005 allows it).",
    "retry-after-fraction": 'A rate-limit 429 carries Retry-After as a decimal fraction ("40.5"), which both SDKs read.',
    "retry-after-date": "A rate-limit 429 carries Retry-After as an HTTP-date, which both SDKs read.",
    "retry-after-ms": "A rate-limit 429 also carries retry-after-ms (the same delay in milliseconds), as Azure OpenAI "
    "sends it and both SDKs prefer it.",
    "unknown-model-400": "An unknown model in a request answers 400 (not 404) where the profile's doc states no status.",
    "model-fields-renamed": "Listed models carry prices and context length under names of the gateway's own "
    "(prompt_price_per_1m, completion_price_per_1m, context_window), which the doc does not name.",
    "owned-by-own": "Listed models report the gateway's own name as owned_by where the profile's doc names no owner.",
    "cache-miss": "The prompt cache never hits: every cacheable request writes it (cached_tokens 0, the documented "
    "cache-read field 0); caching is best effort (USAGE-016 once a MUST).",
    "tool-args-unparsed": "Tool calls of functions without strict: true carry arguments that do not parse as JSON "
    "(the closing brace missing); the spec promises valid JSON only with strict (TOOLS-005/009, SDK-004/005 once MUSTs).",
    "schema-loose": "A json_schema answer without strict: true leaves out one property; adherence is promised only with "
    "strict (STRUCTURED-OUTPUT-003 once a MUST).",
    "params-clamped": "An out-of-range temperature, top_p or n is clamped into its bounds (temperature 2.5 -> 2, "
    "top_p 1.5 -> 1, n 0 -> 1) and served instead of refused (PARAMS-008/009/010 once MUSTs).",
    "body-limit-after-parse": "A chat body is measured against the body limit after parsing, once its unknown "
    "top-level fields are dropped (read up to 16 times the limit); bulk in the messages still gets 413 "
    "(ERRORS-014 once hid its bulk in an unknown field).",
    "finish-separate": "finish_reason arrives on a separate chunk with an empty delta (as Ollama's /v1 does).",
}


def validate(names) -> None:
    """Raise ``ValueError`` for variant names the catalogue lacks."""
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variant(s): {', '.join(unknown)} (see --list-variants)")


def describe() -> list[str]:
    """One line per variant, for ``--list-variants``."""
    return [f"{name:<18}{text}" for name, text in VARIANTS.items()]
