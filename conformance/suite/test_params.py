"""Request parameters: max_tokens, stop, n, seed, ranges, logprobs, unknown fields (spec/requirements/params.yaml).

Stop checks use a prompt that makes any model (and the reference server's ``X-Mock-Provider: echo``) repeat a known
word list, so a stop word is certain to come up.
"""

from __future__ import annotations

import numbers

import pytest

from conformance.exchanges import Spec, exchange
from conformance.suite.fixtures_chat import ENVELOPE, ChatExchange, check_error_envelope, skip_unless_claimed

COUNTING = [{"role": "user", "content": "Count from 1 to 40, separated by spaces."}]
WORDS = "alpha beta gamma delta epsilon"
ECHO = {"X-Mock-Provider": "echo"}
STOP_WORD, AFTER_STOP = "gamma", "delta"


def body(model: str, max_tokens: int | None = 8, **extra) -> dict:
    out = {"model": model, "messages": [{"role": "user", "content": "Say hi."}], **extra}
    if max_tokens is not None:
        out["max_tokens"] = max_tokens
    return out


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def completion_tokens(exchange):
    usage = exchange.usage
    value = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return value if is_int(value) else None


def _accepted(expect, req_id, exchange, note: str | None = None) -> bool:
    return expect(req_id, exchange.ok, expected="HTTP 200 with a completion", received=exchange.summary(), note=note)


def _cut_checks(expect, exchange, limit: int, length_id: str, bound_id: str) -> None:
    tokens, finish = completion_tokens(exchange), exchange.choice().get("finish_reason")
    if tokens is not None:
        expect(bound_id, tokens <= limit, expected=f"completion_tokens <= {limit}", received=tokens)
    if tokens is not None and tokens < limit and finish == "stop":
        return  # finished on its own before the limit: nothing was cut
    expect(length_id, finish == "length", expected='finish_reason "length" when cut by the limit',
           received=f"finish_reason {finish!r}, completion_tokens {tokens}")


def _max_tokens_body(model: str, profile) -> dict:
    logprobs = {"logprobs": True, "top_logprobs": 2} if profile.claims("logprobs") else {}
    return {"model": model, "max_tokens": 5, "messages": COUNTING, **logprobs}


SEEDED = {"seed": 7, "temperature": 1}
BOUNDS = ({"temperature": 0, "top_p": 1}, {"temperature": 2, "top_p": 0})


def _bounds_name(bounds: dict) -> str:
    return "bounds-" + "-".join(f"{k}{v}" for k, v in bounds.items())


# Token id 50256 (GPT-2's end-of-text) biased away: any tokenizer accepts the id; the answer is not judged.
LOGIT_BIAS = {"50256": -100}


@exchange(hint=True)
def params_requests(plan):
    """Every named exchange the checks below ask ``chat_calls`` for: sent with the plan."""
    m, chat = plan.chat_model, lambda payload, **kw: Spec.post("/chat/completions", payload, **kw)
    named = {
        "max-tokens-5": chat(_max_tokens_body(m, plan.profile)),
        "max-completion-5": chat({"model": m, "max_completion_tokens": 5, "messages": COUNTING}),
        "stop-array": chat(_repeat_words(m, [STOP_WORD, "zeta", "theta", "omega"]), headers=ECHO),
        "stop-string": chat(_repeat_words(m, STOP_WORD), headers=ECHO),
        "n-2": chat(body(m, 8, n=2)),
        "seed-1": chat(body(m, 12, **SEEDED)),
        "seed-2": chat(body(m, 12, **SEEDED)),
        "unknown-field": chat(body(m, 4, conformance_extension={"probe": 1})),
        "penalties": chat(body(m, 4, presence_penalty=1.5, frequency_penalty=-1.5)),
        "nulls": chat({**body(m, None, temperature=None, top_p=None, stop=None, n=None), "max_tokens": None}),
        "rejected-PARAMS-005": chat(body(m, 1, stop=["a1", "b2", "c3", "d4", "e5"])),
        "rejected-PARAMS-008": chat(body(m, 1, temperature=2.5)),
        "rejected-PARAMS-009": chat(body(m, 1, top_p=1.5)),
        "rejected-PARAMS-010": chat(body(m, 1, n=0)),
        "rejected-PARAMS-016": chat(body(m, 1, temperature="hot")),
        "rejected-PARAMS-025": chat(body(m, 1, presence_penalty=2.5)),
    }
    named.update({_bounds_name(b): chat(body(m, 4, **b)) for b in BOUNDS})
    if plan.profile.claims("logit-bias"):
        named["logit-bias"] = chat(body(m, 4, logit_bias=LOGIT_BIAS))
    if plan.profile.claims("logprobs"):
        named["rejected-PARAMS-021"] = chat(body(m, 1, logprobs=True, top_logprobs=21))
    return {f"chat.{name}": spec for name, spec in named.items()}


def max_tokens_probe(chat_calls, chat_model, profile):
    """The 5-token cut of a long answer. Where the profile claims logprobs it asks for them too, and the logprobs
    checks judge it: the faults of either side leave the other's fields alone (logprobs do not change the cut)."""
    return chat_calls.post("max-tokens-5", _max_tokens_body(chat_model, profile))


@pytest.mark.requirement("PARAMS-001", "PARAMS-002")
def test_max_tokens_cuts_with_length(params_requests, chat_calls, chat_model, profile, expect):
    exchange = max_tokens_probe(chat_calls, chat_model, profile)
    if not _accepted(expect, "PARAMS-001", exchange):
        return
    _cut_checks(expect, exchange, 5, "PARAMS-001", "PARAMS-002")


@pytest.mark.requirement("PARAMS-014")
def test_max_completion_tokens(params_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("max-completion-5", {"model": chat_model, "max_completion_tokens": 5,
                                                    "messages": COUNTING})
    if _accepted(expect, "PARAMS-014", exchange):
        _cut_checks(expect, exchange, 5, "PARAMS-014", "PARAMS-014")


def _repeat_words(model: str, stop) -> dict:
    return {"model": model, "max_tokens": 16, "stop": stop,
            "messages": [{"role": "user", "content": f"Repeat exactly: {WORDS}"}]}


@pytest.mark.requirement("PARAMS-003", "PARAMS-004")
def test_stop_array(params_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("stop-array", _repeat_words(chat_model, [STOP_WORD, "zeta", "theta", "omega"]),
                               headers=ECHO)
    if not _accepted(expect, "PARAMS-004", exchange, "stop with 4 strings"):
        return
    content = exchange.content if isinstance(exchange.content, str) else ""
    expect("PARAMS-003", STOP_WORD not in content, expected=f"content without the stop sequence {STOP_WORD!r}",
           received=repr(content))
    expect("PARAMS-004", AFTER_STOP not in content, expected=f"generation ended at {STOP_WORD!r}",
           received=repr(content))


@pytest.mark.requirement("PARAMS-022")
def test_stop_string(params_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("stop-string", _repeat_words(chat_model, STOP_WORD), headers=ECHO)
    if not _accepted(expect, "PARAMS-022", exchange, "stop as a string"):
        return
    content = exchange.content if isinstance(exchange.content, str) else ""
    expect("PARAMS-022", STOP_WORD not in content and AFTER_STOP not in content,
           expected=f"generation ended at {STOP_WORD!r}, without it", received=repr(content))


def _rejected(expect, chat_calls, profile, req_id, payload, param: str | None) -> None:
    response = chat_calls.post(f"rejected-{req_id}", payload)
    expect(req_id, response.status_code == 400, expected="HTTP 400",
           received=f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code < 400:
        return
    err = check_error_envelope(expect, response, profile)
    if param and err is not None:
        expect("PARAMS-011", err.get("param") == param, expected=f'param "{param}"', received=err.get("param"))


@pytest.mark.requirement("PARAMS-005", "PARAMS-011", *ENVELOPE)
def test_more_than_four_stops(params_requests, chat_calls, chat_model, profile, expect):
    # PARAMS-005 asks for param "stop" too; naming the parameter is PARAMS-011's to judge, as for every range error.
    _rejected(expect, chat_calls, profile, "PARAMS-005", body(chat_model, 1, stop=["a1", "b2", "c3", "d4", "e5"]), "stop")


@pytest.mark.requirement("PARAMS-008", "PARAMS-011", *ENVELOPE)
def test_temperature_out_of_range(params_requests, chat_calls, chat_model, profile, expect):
    _rejected(expect, chat_calls, profile, "PARAMS-008", body(chat_model, 1, temperature=2.5), "temperature")


@pytest.mark.requirement("PARAMS-009", "PARAMS-011", *ENVELOPE)
def test_top_p_out_of_range(params_requests, chat_calls, chat_model, profile, expect):
    _rejected(expect, chat_calls, profile, "PARAMS-009", body(chat_model, 1, top_p=1.5), "top_p")


@pytest.mark.requirement("PARAMS-010", "PARAMS-011", *ENVELOPE)
def test_n_out_of_range(params_requests, chat_calls, chat_model, profile, expect):
    _rejected(expect, chat_calls, profile, "PARAMS-010", body(chat_model, 1, n=0), "n")


@pytest.mark.requirement("PARAMS-025", "PARAMS-011", *ENVELOPE)
def test_penalty_out_of_range(params_requests, chat_calls, chat_model, profile, expect):
    _rejected(expect, chat_calls, profile, "PARAMS-025", body(chat_model, 1, presence_penalty=2.5), "presence_penalty")


@pytest.mark.requirement("PARAMS-026")
def test_logit_bias_accepted(params_requests, chat_calls, chat_model, expect):
    _accepted(expect, "PARAMS-026", chat_calls.post("logit-bias", body(chat_model, 4, logit_bias=LOGIT_BIAS)))


@pytest.mark.requirement("PARAMS-016", "PARAMS-011", *ENVELOPE)
def test_mistyped_parameter(params_requests, chat_calls, chat_model, profile, expect):
    _rejected(expect, chat_calls, profile, "PARAMS-016", body(chat_model, 1, temperature="hot"), "temperature")


@pytest.mark.requirement("PARAMS-021", *ENVELOPE)
def test_top_logprobs_out_of_range(params_requests, chat_calls, chat_model, profile, expect):
    skip_unless_claimed(profile, "logprobs")
    response = chat_calls.post("rejected-PARAMS-021", body(chat_model, 1, logprobs=True, top_logprobs=21))
    expect("PARAMS-021", response.status_code == 400, expected="HTTP 400",
           received=f"HTTP {response.status_code}: {response.text[:300]}")
    if response.status_code >= 400:
        check_error_envelope(expect, response, profile)


@pytest.mark.requirement("PARAMS-006")
def test_n_choices(params_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("n-2", body(chat_model, 8, n=2))
    if not _accepted(expect, "PARAMS-006", exchange):
        return
    indexes = [c.get("index") if isinstance(c, dict) else None for c in exchange.choices]
    expect("PARAMS-006", indexes == [0, 1], expected="2 choices with indexes [0, 1]", received=indexes)


@pytest.mark.requirement("PARAMS-024")
def test_seed_accepted(params_requests, chat_calls, chat_model, expect):
    _accepted(expect, "PARAMS-024", chat_calls.post("seed-1", body(chat_model, 12, **SEEDED)))


@pytest.mark.requirement("PARAMS-007")
def test_seed_reproduces(params_requests, chat_calls, chat_model, expect):
    first = chat_calls.post("seed-1", body(chat_model, 12, **SEEDED))
    second = chat_calls.post("seed-2", body(chat_model, 12, **SEEDED))
    if not (first.ok and second.ok):
        return  # not accepted at all: PARAMS-024's violation
    expect("PARAMS-007", first.content == second.content, expected=repr(first.content), received=repr(second.content))


def _logprob_item_ok(item) -> bool:
    return isinstance(item, dict) and isinstance(item.get("token"), str) \
        and isinstance(item.get("logprob"), numbers.Real) and isinstance(item.get("bytes"), (list, type(None)))


@pytest.mark.requirement("PARAMS-012", "PARAMS-013")
def test_logprobs(params_requests, chat_calls, chat_model, profile, expect):
    exchange = max_tokens_probe(chat_calls, chat_model, profile)  # asks logprobs with top_logprobs 2
    if not _accepted(expect, "PARAMS-012", exchange):
        return
    logprobs = exchange.choice().get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    expect("PARAMS-012", isinstance(content, list) and content, expected="logprobs.content: non-empty array",
           received=logprobs)
    for i, item in enumerate(content if isinstance(content, list) else []):
        top = item.get("top_logprobs") if isinstance(item, dict) else None
        expect("PARAMS-012", _logprob_item_ok(item) and isinstance(top, list),
               expected="token, logprob, bytes, top_logprobs", received=item, note=f"content[{i}]")
        if isinstance(top, list):
            expect("PARAMS-013", len(top) <= 2 and all(_logprob_item_ok(t) for t in top),
                   expected="at most 2 entries, each with token, logprob and bytes", received=top,
                   note=f"content[{i}]")


@pytest.mark.requirement("PARAMS-015")
def test_unknown_fields_ignored(params_requests, chat_calls, chat_model, expect):
    exchange = chat_calls.post("unknown-field", body(chat_model, 4, conformance_extension={"probe": 1}))
    _accepted(expect, "PARAMS-015", exchange)


@pytest.mark.requirement("PARAMS-017")
@pytest.mark.parametrize("bounds", BOUNDS, ids=["t0-p1", "t2-p0"])
def test_inclusive_bounds(params_requests, chat_calls, chat_model, bounds, expect):
    name = _bounds_name(bounds)
    _accepted(expect, "PARAMS-017", chat_calls.post(name, body(chat_model, 4, **bounds)), note=str(bounds))


@pytest.mark.requirement("PARAMS-018")
def test_penalties_accepted(params_requests, chat_calls, chat_model, expect):
    penalties = {"presence_penalty": 1.5, "frequency_penalty": -1.5}
    _accepted(expect, "PARAMS-018", chat_calls.post("penalties", body(chat_model, 4, **penalties)))


@pytest.mark.requirement("PARAMS-019")
def test_explicit_nulls_accepted(params_requests, chat_calls, chat_model, expect):
    nulls = {"temperature": None, "top_p": None, "stop": None, "n": None}
    _accepted(expect, "PARAMS-019", chat_calls.post("nulls", {**body(chat_model, None, **nulls), "max_tokens": None}))


@pytest.mark.requirement("PARAMS-020")
def test_logprobs_null_by_default(chat_basic, expect):
    if not chat_basic.ok or not chat_basic.choices:
        return  # the shared completion failed: the chat checks report it
    for i, choice in enumerate(chat_basic.choices):
        if isinstance(choice, dict) and "logprobs" in choice:  # absent is CHAT-007's violation
            expect("PARAMS-020", choice["logprobs"] is None, expected="logprobs null", received=choice["logprobs"],
                   note=f"choices[{i}]")


@pytest.mark.requirement("PARAMS-023")
def test_natural_end_is_stop(chat_basic, expect):
    tokens, limit = completion_tokens(chat_basic), chat_basic.request["max_tokens"]
    if not chat_basic.ok or tokens is None or tokens >= limit:
        return  # failed, no usage, or really cut by the limit: nothing to judge here
    finish = chat_basic.choice().get("finish_reason")
    if finish in ("tool_calls", "content_filter", "function_call", None, ""):
        return
    expect("PARAMS-023", finish == "stop", expected='finish_reason "stop"',
           received=f"finish_reason {finish!r} after {tokens} of {limit} tokens")


LONG_ESSAY = [{"role": "user", "content": "Write a long essay of at least 3000 words about the history of the "
                                          "printing press. Do not stop early."}]


@exchange(view=ChatExchange.of)
def params_default_max_tokens(plan):
    if not plan.profile.get("defaults.max_tokens"):
        pytest.skip(f"profile {plan.profile.name} documents no max_tokens default")
    return Spec.post("/chat/completions", {"model": plan.chat_model, "messages": LONG_ESSAY})


@pytest.mark.requirement("PARAMS-027")
def test_documented_max_tokens_default(params_default_max_tokens, profile, expect):
    exchange, default = params_default_max_tokens, profile.get("defaults.max_tokens")
    if not exchange.ok:
        expect.untestable("PARAMS-027", f"the completion it needs failed: {exchange.summary()}")
        return
    used = completion_tokens(exchange)
    choice = exchange.choices[0] if exchange.choices and isinstance(exchange.choices[0], dict) else {}
    finish = choice.get("finish_reason")
    if used is None or (used <= default and finish != "length"):
        return  # no usage (USAGE-001's), or the essay ended on its own below the default: the cap was not reached
    expect("PARAMS-027", used <= default, expected=f"at most {default} completion tokens (the documented default)",
           received=f"{used} completion tokens, finish_reason {finish!r}")
