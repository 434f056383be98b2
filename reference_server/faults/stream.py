"""Faults that act on the chunk sequence of a chat stream (CHAT-STREAM-*, streamed TOOLS-*, USAGE-* chunks).

``distort_chunks`` receives the correct sequence from ``streaming.build_chunks`` and returns it broken in exactly
the ways the active faults ask for; with no fault on it only appends the usage chunk.
"""

from __future__ import annotations

import copy

from reference_server import faults
from reference_server.context import fault as _on
from reference_server.context import server_config
from reference_server.surfaces.chat_request import ChatRequest

F = faults.declare
SCHEMA = "CHAT-STREAM-017"
# The SDK's stream helper (openai lib/streaming/chat/_completions.py) builds its final message from the deltas:
# role and content by string concatenation (lib/streaming/_deltas.py accumulate_delta), choices by index, and it
# skips chunks whose object is not "chat.completion.chunk". The role faults therefore show in SDK-003 and the
# object and index faults in both helper checks (SDK-003, SDK-005).
FAULT_NO_ROLE = F("CHAT-STREAM-001", "The first chunk of each choice carries no delta.role.", collateral=("SDK-003",))
FAULT_OBJECT = F("CHAT-STREAM-002", 'Chunks carry object "chat.completion".', collateral=(SCHEMA, "SDK-003", "SDK-005"))
FAULT_ID_CHANGES = F("CHAT-STREAM-004", "Every chunk carries a different id.")
FAULT_CREATED_CHANGES = F("CHAT-STREAM-005", "created grows by one on every chunk.")
FAULT_MODEL_CHANGES = F("CHAT-STREAM-006", 'Chunks after the first carry model "<model>-upstream".')
FAULT_ROLE_REPEATED = F("CHAT-STREAM-007", 'delta.role "assistant" is repeated on every chunk.',
                        collateral=("SDK-003",))  # the helper's role becomes "assistantassistant..."
FAULT_ROLE_EMPTY = F("CHAT-STREAM-008", 'The first delta carries role "".',
                     collateral=("CHAT-STREAM-001", SCHEMA, "SDK-003"))
FAULT_FINISH_MISSING = F("CHAT-STREAM-009", "Chunks before the last leave out finish_reason.", collateral=(SCHEMA,))
FAULT_FINISH_EMPTY = F("CHAT-STREAM-010", 'The last chunk of plain streams carries finish_reason "".',
                       collateral=(SCHEMA,))
FAULT_FINISH_NEVER = F("CHAT-STREAM-011", "No chunk ever carries a finish_reason.",
                       collateral=("CHAT-STREAM-010", "TOOLS-010"))
FAULT_EMPTY_CHOICES = F("CHAT-STREAM-012", "A chunk with choices [] and no usage follows the first chunk.")
FAULT_NO_INDEX = F("CHAT-STREAM-013", "Choice items leave out index.", collateral=(SCHEMA, "SDK-003", "SDK-005"))
# Plain answers only, as CHAT-014's fault: JSON-mode content must stay JSON (STRUCTURED-OUTPUT-002 judges it).
FAULT_STREAM_DIFFERS = F("CHAT-STREAM-014", 'Plain streamed content (no tools, format, logprobs) ends with an extra '
                         '" (streamed)" the JSON answer lacks.')
FAULT_AFTER_FINISH = F("CHAT-STREAM-015", "An empty content delta for choice 0 follows its finish_reason.")
FAULT_NO_CONTENT = F("CHAT-STREAM-016", "Plain text streams send no content delta.", collateral=("CHAT-STREAM-014",))
# A field no client reads: logprobs "" (the earlier choice) made the SDK's stream helper raise on .content, which
# moved SDK-003/SDK-005 though the break is only a schema one.
FAULT_BAD_FINGERPRINT = F(SCHEMA, "Chunks carry system_fingerprint as an integer.")
FAULT_ONLY_FIRST = F("CHAT-STREAM-018", "With n > 1 only choice 0 is streamed.")
FAULT_REASONING_LATE = F("CHAT-STREAM-019", "reasoning_content deltas come after the content deltas.")
FAULT_THINK_OPEN = F("CHAT-STREAM-020", "The streamed <think> prefix is never closed.")
# The helper merges tool-call fragments by index and concatenates their arguments: SDK-005 shows both breaks.
FAULT_NO_TOOL_INDEX = F("TOOLS-007", "Streamed tool-call deltas leave out index.", collateral=(SCHEMA, "SDK-005"))
FAULT_NO_TOOL_ID = F("TOOLS-008", "The first streamed fragment of a tool call leaves out id.")
FAULT_ARGS_CUT = F("TOOLS-009", "The last arguments fragment of each streamed tool call is dropped.",
                   collateral=("SDK-005",))
FAULT_TOOL_FINISH_STOP = F("TOOLS-010", 'Streamed tool-calling choices end with finish_reason "stop".')
FAULT_TOOL_REPEAT = F("TOOLS-018", "Every streamed arguments fragment repeats the call's id and name.",
                      collateral=("TOOLS-004",))
FAULT_USAGE_TWICE = F("USAGE-005", "The usage chunk is sent twice.")
# SDK-015 reads the usage of the final chunk, which is then a choice chunk with usage null.
FAULT_USAGE_EARLY = F("USAGE-006", "The usage chunk comes before the last choice chunk.", collateral=("SDK-015",))
FAULT_USAGE_EVERYWHERE = F("USAGE-007", "Every chunk carries the final usage object, not null.")
# A usage chunk has choices [] by definition, and unrequested it is the empty-choices chunk CHAT-STREAM-012 forbids.
FAULT_USAGE_UNASKED = F("USAGE-008", "A usage chunk is sent without include_usage.", collateral=("CHAT-STREAM-012",))
FAULT_USAGE_INLINE = F("USAGE-013", "Auto-injected usage rides on the last choice chunk instead of its own chunk.")
FAULT_JSON_FENCE = F("STRUCTURED-OUTPUT-002", "Streamed json_object content starts with a ```json fence.")


def plain_request(req: ChatRequest) -> bool:
    """No tools, response_format or logprobs: where faults that alter content act, so the checks of tool calls,
    structured output and logprobs keep judging their own requirements. The raw body, as ``chat.plain_answer``:
    ``{"type": "text"}`` parses to no format but STRUCTURED-OUTPUT-005 judges that answer."""
    return not (req.tools or req.body.get("response_format") or req.logprobs)


def _delta(chunk: dict) -> dict:
    return chunk["choices"][0]["delta"] if chunk["choices"] else {}


def _is_bare_content(chunk: dict) -> bool:
    """A content delta that carries nothing else (no role, no finish_reason): CHAT-STREAM-016's fault drops it."""
    return bool(_delta(chunk).get("content")) and "role" not in _delta(chunk) \
        and chunk["choices"][0].get("finish_reason") is None


def _without_content(chunk: dict) -> dict:
    """The chunk minus its content text, so a finish chunk still ends the choice (CHAT-STREAM-010/011)."""
    if _delta(chunk).get("content") and "role" not in _delta(chunk):
        del _delta(chunk)["content"]
    return chunk


def distort_chunks(req: ChatRequest, chunks: list[dict], usage_chunk: dict | None, spare_usage: dict) -> list[dict]:
    """Apply the stream faults; returns the final chunk list (usage chunk included when due)."""
    if not server_config().fault_questions_matter():
        return chunks + ([usage_chunk] if usage_chunk else [])
    chunks = copy.deepcopy(chunks)
    chunks = _content_faults(req, chunks)
    chunks = _tool_faults(chunks)
    _field_faults(chunks)
    _choice_faults(chunks)
    return _usage_faults(req, chunks, usage_chunk, spare_usage)


def _content_faults(req: ChatRequest, chunks: list[dict]) -> list[dict]:
    plain = not req.response_format and not req.tools
    if plain and _on(FAULT_NO_CONTENT):
        chunks = [_without_content(c) for c in chunks if not _is_bare_content(c)]
    if (req.response_format or {}).get("type") == "json_object" and _on(FAULT_JSON_FENCE):
        fence = copy.deepcopy(chunks[0])
        fence["choices"][0].update({"delta": {"content": "```json\n"}, "finish_reason": None})
        chunks.insert(1, fence)
    if _on(FAULT_STREAM_DIFFERS) and plain_request(req):
        extra = copy.deepcopy(chunks[0])
        extra["choices"][0].update({"delta": {"content": " (streamed)"}, "finish_reason": None})
        chunks.insert(len(chunks) - 1, extra)
    if _on(FAULT_REASONING_LATE):
        late = [c for c in chunks if "reasoning_content" in _delta(c) and "role" not in _delta(c)]
        rest = [c for c in chunks if c not in late]
        chunks = rest[:-1] + late + rest[-1:]
    if _on(FAULT_THINK_OPEN):
        texts = [_delta(c).get("content") for c in chunks]
        for i in range(1, len(chunks) - 1):
            if texts[i] == "/" and texts[i - 1] == "<" and texts[i + 1] == "think":
                _delta(chunks[i])["content"] = ""
    if _on(FAULT_ONLY_FIRST):
        chunks = [c for c in chunks if c["choices"][0]["index"] == 0]
    return chunks


def _tool_faults(chunks: list[dict]) -> list[dict]:
    heads: dict[int, dict] = {}
    last_fragment: dict[int, dict] = {}
    for chunk in chunks:
        for call in _delta(chunk).get("tool_calls") or []:
            if "id" in call:
                heads[call["index"]] = call
            else:
                last_fragment[call["index"]] = chunk
    if _on(FAULT_ARGS_CUT):
        for chunk in last_fragment.values():
            _delta(chunk)["tool_calls"][0]["function"]["arguments"] = ""
    for chunk in chunks:
        item = chunk["choices"][0]
        if item["finish_reason"] == "tool_calls" and _on(FAULT_TOOL_FINISH_STOP):
            item["finish_reason"] = "stop"
        for call in _delta(chunk).get("tool_calls") or []:
            head = heads.get(call["index"], {})
            if "id" in call and _on(FAULT_NO_TOOL_ID):
                del call["id"]
            elif "id" not in call and _on(FAULT_TOOL_REPEAT):
                call.update({"id": head.get("id"), "type": "function"})
                call["function"]["name"] = head.get("function", {}).get("name")
            if _on(FAULT_NO_TOOL_INDEX):
                del call["index"]
    return chunks


def _field_faults(chunks: list[dict]) -> None:
    for number, chunk in enumerate(chunks):
        if _on(FAULT_OBJECT):
            chunk["object"] = "chat.completion"
        if _on(FAULT_ID_CHANGES):
            chunk["id"] = f"{chunk['id']}-{number}"
        if _on(FAULT_CREATED_CHANGES):
            chunk["created"] += number
        if number and _on(FAULT_MODEL_CHANGES):
            chunk["model"] = f"{chunk['model']}-upstream"
        if _on(FAULT_BAD_FINGERPRINT):
            chunk["system_fingerprint"] = 42


def _choice_faults(chunks: list[dict]) -> None:
    seen: set[int] = set()
    for chunk in chunks:
        item = chunk["choices"][0]
        first = item["index"] not in seen
        seen.add(item["index"])
        delta = item["delta"]
        if first and _on(FAULT_NO_ROLE):
            delta.pop("role", None)
        if first and _on(FAULT_ROLE_EMPTY):
            delta["role"] = ""
        if not first and _on(FAULT_ROLE_REPEATED):
            delta["role"] = "assistant"
        if item["finish_reason"] is None and _on(FAULT_FINISH_MISSING):
            del item["finish_reason"]
        elif item["finish_reason"] not in (None, "tool_calls") and _on(FAULT_FINISH_EMPTY):
            item["finish_reason"] = ""
        if "finish_reason" in item and _on(FAULT_FINISH_NEVER):
            item["finish_reason"] = None
    if _on(FAULT_NO_INDEX):
        for chunk in chunks:
            chunk["choices"][0].pop("index", None)
    if _on(FAULT_AFTER_FINISH):
        trailing = copy.deepcopy(chunks[0])
        trailing["choices"][0].update({"delta": {"content": ""}, "finish_reason": None, "index": 0})
        chunks.append(trailing)
    if _on(FAULT_EMPTY_CHOICES):
        empty = {k: v for k, v in chunks[0].items() if k not in ("choices", "usage")}
        chunks.insert(1, {**empty, "choices": []})


def _usage_faults(req: ChatRequest, chunks: list[dict], usage_chunk: dict | None, spare: dict) -> list[dict]:
    if usage_chunk is None:
        if _on(FAULT_USAGE_UNASKED):
            return chunks + [spare]
        return chunks
    if not req.usage_requested and _on(FAULT_USAGE_INLINE):
        chunks[-1]["usage"] = usage_chunk["usage"]
        return chunks
    if _on(FAULT_USAGE_EVERYWHERE):
        for chunk in chunks:
            chunk["usage"] = usage_chunk["usage"]
    if _on(FAULT_USAGE_EARLY):
        return chunks[:-1] + [usage_chunk] + chunks[-1:]
    if _on(FAULT_USAGE_TWICE):
        return chunks + [usage_chunk, usage_chunk]
    return chunks + [usage_chunk]
