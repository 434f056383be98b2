"""Faults that act on the chunk sequence of a chat stream (CHAT-STREAM-*, streamed TOOLS-*, USAGE-* chunks): the
``CHUNKS`` seam (faults/seams.py), each transform ``(stream, req) -> stream``.

``streaming.build_chunks`` passes the correct sequence as a :class:`ChunkStream` (the choice chunks, the usage chunk
when it is due, and the one it would send unasked); the seam deep-copies it before the first transform that
applies, so transforms edit it in place. The chunks sent are ``stream.chunks`` then ``stream.usage``.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reference_server import faults
from reference_server.faults.completion import FAULT_SAME_ID, FAULT_SNAPSHOT_MODEL, SNAPSHOT_SUFFIX
from reference_server.faults.seams import CHUNKS

if TYPE_CHECKING:
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




@dataclass
class ChunkStream:
    """The chunks of one chat stream: ``chunks`` (one choice item each), then ``usage`` when due; ``spare`` is the
    usage chunk the stream would carry had it been asked for."""

    chunks: list[dict[str, Any]]
    usage: dict[str, Any] | None
    spare: dict[str, Any]

    def every_chunk(self) -> Iterator[dict[str, Any]]:
        yield from self.chunks
        yield from (c for c in (self.usage, self.spare) if c is not None)


CHUNKS.prepare = copy.deepcopy
at = CHUNKS.transform


def plain_request(req: ChatRequest) -> bool:
    """No tools, response_format or logprobs: where faults that alter content act, so the checks of tool calls,
    structured output and logprobs keep judging their own requirements. The raw body, as ``chat.plain_answer``:
    ``{"type": "text"}`` parses to no format but STRUCTURED-OUTPUT-005 judges that answer."""
    return not (req.tools or req.body.get("response_format") or req.logprobs)


def _delta(chunk: dict) -> dict:
    return chunk["choices"][0]["delta"] if chunk["choices"] else {}


def _item(chunk: dict) -> dict:
    return chunk["choices"][0]


def _is_bare_content(chunk: dict) -> bool:
    """A content delta that carries nothing else (no role, no finish_reason): CHAT-STREAM-016's fault drops it."""
    return bool(_delta(chunk).get("content")) and "role" not in _delta(chunk) \
        and chunk["choices"][0].get("finish_reason") is None


def _without_content(chunk: dict) -> dict:
    """The chunk minus its content text, so a finish chunk still ends the choice (CHAT-STREAM-010/011)."""
    if _delta(chunk).get("content") and "role" not in _delta(chunk):
        del _delta(chunk)["content"]
    return chunk


def _copy_of_first(stream: ChunkStream, **item: Any) -> dict:
    """A copy of the first chunk whose choice item is updated with ``item``."""
    extra = copy.deepcopy(stream.chunks[0])
    extra["choices"][0].update(item)
    return extra


def _any_chunk(test: Any) -> Any:
    return lambda stream, req: any(test(chunk) for chunk in stream.chunks)


def _calls(chunk: dict) -> list[dict]:
    return _delta(chunk).get("tool_calls") or []


def _any_call(test: Any) -> Any:
    return lambda stream, req: any(test(call) for chunk in stream.chunks for call in _calls(chunk))


# ---------------------------------------------------------------- id and model (the chat surface's faults)


@at(FAULT_SAME_ID)
def _same_id(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.every_chunk():
        chunk["id"] = "chatcmpl-mock"
    return stream


@at(FAULT_SNAPSHOT_MODEL)
def _snapshot_model(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.every_chunk():
        chunk["model"] = req.model.id + SNAPSHOT_SUFFIX
    return stream


# ---------------------------------------------------------------- content


@at(FAULT_NO_CONTENT, lambda stream, req: not req.response_format and not req.tools)
def _no_content(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks = [_without_content(c) for c in stream.chunks if not _is_bare_content(c)]
    return stream


@at(FAULT_JSON_FENCE, lambda stream, req: (req.response_format or {}).get("type") == "json_object")
def _json_fence(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks.insert(1, _copy_of_first(stream, delta={"content": "```json\n"}, finish_reason=None))
    return stream


@at(FAULT_STREAM_DIFFERS, lambda stream, req: plain_request(req))
def _stream_differs(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks.insert(len(stream.chunks) - 1,
                         _copy_of_first(stream, delta={"content": " (streamed)"}, finish_reason=None))
    return stream


@at(FAULT_REASONING_LATE)
def _reasoning_late(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    chunks = stream.chunks
    late = [c for c in chunks if "reasoning_content" in _delta(c) and "role" not in _delta(c)]
    rest = [c for c in chunks if c not in late]
    stream.chunks = rest[:-1] + late + rest[-1:]
    return stream


@at(FAULT_THINK_OPEN)
def _think_open(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    chunks = stream.chunks
    texts = [_delta(c).get("content") for c in chunks]
    for i in range(1, len(chunks) - 1):
        if texts[i] == "/" and texts[i - 1] == "<" and texts[i + 1] == "think":
            _delta(chunks[i])["content"] = ""
    return stream


@at(FAULT_ONLY_FIRST)
def _only_first(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks = [c for c in stream.chunks if _item(c)["index"] == 0]
    return stream


# ---------------------------------------------------------------- tool calls


@at(FAULT_ARGS_CUT)
def _args_cut(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    last_fragment: dict[int, dict] = {}
    for chunk in stream.chunks:
        for call in _calls(chunk):
            if "id" not in call:
                last_fragment[call["index"]] = chunk
    for chunk in last_fragment.values():
        _delta(chunk)["tool_calls"][0]["function"]["arguments"] = ""
    return stream


@at(FAULT_TOOL_FINISH_STOP, _any_chunk(lambda chunk: _item(chunk)["finish_reason"] == "tool_calls"))
def _tool_finish_stop(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        if _item(chunk)["finish_reason"] == "tool_calls":
            _item(chunk)["finish_reason"] = "stop"
    return stream


@at(FAULT_NO_TOOL_ID, _any_call(lambda call: "id" in call))
def _no_tool_id(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        for call in _calls(chunk):
            call.pop("id", None)
    return stream


@at(FAULT_TOOL_REPEAT, _any_call(lambda call: "id" not in call))
def _tool_repeat(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    heads = {call["index"]: call for chunk in stream.chunks for call in _calls(chunk) if "id" in call}
    for chunk in stream.chunks:
        for call in _calls(chunk):
            if "id" not in call:
                head = heads.get(call["index"], {})
                call.update({"id": head.get("id"), "type": "function"})
                call["function"]["name"] = head.get("function", {}).get("name")
    return stream


@at(FAULT_NO_TOOL_INDEX, _any_call(lambda call: True))
def _no_tool_index(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        for call in _calls(chunk):
            del call["index"]
    return stream


# ---------------------------------------------------------------- chunk fields


def _each_chunk(change: Any) -> Any:
    """A transform applying ``change(chunk, number)`` to every choice chunk; asked for any stream with chunks."""
    def transform(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
        for number, chunk in enumerate(stream.chunks):
            change(chunk, number)
        return stream
    return transform


_has_chunks = _any_chunk(lambda chunk: True)
at(FAULT_OBJECT, _has_chunks)(_each_chunk(lambda chunk, n: chunk.update(object="chat.completion")))
at(FAULT_ID_CHANGES, _has_chunks)(_each_chunk(lambda chunk, n: chunk.update(id=f"{chunk['id']}-{n}")))
at(FAULT_CREATED_CHANGES, _has_chunks)(_each_chunk(lambda chunk, n: chunk.update(created=chunk["created"] + n)))
at(FAULT_MODEL_CHANGES, lambda stream, req: len(stream.chunks) > 1)(
    _each_chunk(lambda chunk, n: n and chunk.update(model=f"{chunk['model']}-upstream")))
at(FAULT_BAD_FINGERPRINT, _has_chunks)(_each_chunk(lambda chunk, n: chunk.update(system_fingerprint=42)))


# ---------------------------------------------------------------- choice items


def _first_of_each_choice(stream: ChunkStream) -> list[dict]:
    """The first chunk of every choice."""
    seen: set[int] = set()
    firsts = []
    for chunk in stream.chunks:
        if _item(chunk)["index"] not in seen:
            seen.add(_item(chunk)["index"])
            firsts.append(chunk)
    return firsts


@at(FAULT_NO_ROLE, _has_chunks)
def _no_role(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in _first_of_each_choice(stream):
        _delta(chunk).pop("role", None)
    return stream


@at(FAULT_ROLE_EMPTY, _has_chunks)
def _role_empty(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in _first_of_each_choice(stream):
        _delta(chunk)["role"] = ""
    return stream


@at(FAULT_ROLE_REPEATED, lambda stream, req: len(_first_of_each_choice(stream)) < len(stream.chunks))
def _role_repeated(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    firsts = _first_of_each_choice(stream)
    for chunk in stream.chunks:
        if not any(chunk is first for first in firsts):
            _delta(chunk)["role"] = "assistant"
    return stream


@at(FAULT_FINISH_MISSING, _any_chunk(lambda chunk: _item(chunk)["finish_reason"] is None))
def _finish_missing(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        if _item(chunk)["finish_reason"] is None:
            del _item(chunk)["finish_reason"]
    return stream


@at(FAULT_FINISH_EMPTY, _any_chunk(lambda chunk: _item(chunk).get("finish_reason") not in (None, "tool_calls")))
def _finish_empty(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        if _item(chunk).get("finish_reason") not in (None, "tool_calls"):
            _item(chunk)["finish_reason"] = ""
    return stream


@at(FAULT_FINISH_NEVER, _any_chunk(lambda chunk: "finish_reason" in _item(chunk)))
def _finish_never(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        if "finish_reason" in _item(chunk):
            _item(chunk)["finish_reason"] = None
    return stream


@at(FAULT_NO_INDEX)
def _no_index(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        _item(chunk).pop("index", None)
    return stream


@at(FAULT_AFTER_FINISH)
def _after_finish(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks.append(_copy_of_first(stream, delta={"content": ""}, finish_reason=None, index=0))
    return stream


@at(FAULT_EMPTY_CHOICES)
def _empty_choices(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    empty = {k: v for k, v in stream.chunks[0].items() if k not in ("choices", "usage")}
    stream.chunks.insert(1, {**empty, "choices": []})
    return stream


# ---------------------------------------------------------------- the usage chunk


@at(FAULT_USAGE_UNASKED, lambda stream, req: stream.usage is None)
def _usage_unasked(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.usage = stream.spare
    return stream


@at(FAULT_USAGE_INLINE, lambda stream, req: stream.usage is not None and not req.usage_requested)
def _usage_inline(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks[-1]["usage"] = stream.usage["usage"]
    stream.usage = None
    return stream


def _usage_due(stream: ChunkStream, req: ChatRequest) -> bool:
    return stream.usage is not None


@at(FAULT_USAGE_EVERYWHERE, _usage_due)
def _usage_everywhere(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    for chunk in stream.chunks:
        chunk["usage"] = stream.usage["usage"]
    return stream


@at(FAULT_USAGE_EARLY, _usage_due)
def _usage_early(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks.insert(len(stream.chunks) - 1, stream.usage)
    stream.usage = None
    return stream


@at(FAULT_USAGE_TWICE, _usage_due)
def _usage_twice(stream: ChunkStream, req: ChatRequest) -> ChunkStream:
    stream.chunks.append(stream.usage)
    return stream
