"""``request_hashes`` (the messages encoded once for both of a chat request's hashes) equals hashing each whole."""

import random

from reference_server.surfaces.chat_hashes import canonical_hash, request_hashes


def _value(rnd: random.Random, depth: int = 0):
    kind = rnd.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rnd.choice([None, True, False])
    if kind == 1:
        return rnd.choice([0, -3, 2**70, 0.5, 1e-9, 1.0])
    if kind in (2, 3):
        return "".join(rnd.choice('ab "\\\n\té日😀</') for _ in range(rnd.randint(0, 6)))
    if kind == 4:
        return [_value(rnd, depth + 1) for _ in range(rnd.randint(0, 3))]
    return {rnd.choice(["z", "a", "é", "role", "content", ""]) + str(i): _value(rnd, depth + 1)
            for i in range(rnd.randint(0, 3))}


def test_request_hashes_equal_the_whole_encodings():
    rnd = random.Random(11)
    for _ in range(2000):
        messages = [{"role": "user", "content": _value(rnd)} for _ in range(rnd.randint(0, 3))]
        body = {"messages": messages, "model": "m", **{rnd.choice(["k", "é", '"', "messages_", "\n", ""])
                                                       + str(rnd.randint(0, 9)): _value(rnd) for _ in range(3)}}
        # a request's shaping (CONTENT_FIELDS, the seed left out at temperature 0), or some other object
        shaping = {"messages": messages, "temperature": rnd.choice([None, 0.0, 1.5]), "tools": _value(rnd),
                   "tool_choice": rnd.choice(["auto", {"name": "f"}, _value(rnd)]), "response_format": _value(rnd),
                   "parallel_tool_calls": _value(rnd), "seed": _value(rnd)}
        for name in rnd.sample(sorted(shaping), rnd.choice([0, 0, 1, 2])):
            del shaping[name]
        if rnd.random() < 0.2:
            shaping["messages"] = [dict(m) for m in messages]  # not the body's list: encoded on its own
        path = rnd.choice(["/v1/chat/completions", "/chat/completions"])
        assert request_hashes(path, body, "gpt-x", shaping) == (canonical_hash([path, body]),
                                                               canonical_hash(["gpt-x", shaping]))


def test_request_hashes_of_a_body_without_messages():
    assert request_hashes("/p", {}, "m", {}) == (canonical_hash(["/p", {}]), canonical_hash(["m", {}]))


def test_request_hashes_of_awkward_keys_and_values():
    messages = [{"role": "user", "content": "x"}]
    body = {"model": "m", "messages": messages, 'q"uote': {"messages": [1]}, "a\nb": [None, True, False, "é"],
            "": "", "Z": 1.5, "n": 2**70, "t": True, "f": False, "z": None, "s": "\u2028\x00"}
    shaping = {"messages": messages, "tools": [], "tool_choice": {"name": "f"}, "seed": 3, "temperature": 0.0,
               "parallel_tool_calls": False, "response_format": None}
    assert request_hashes("/p", body, "m", shaping) == (canonical_hash(["/p", body]), canonical_hash(["m", shaping]))
