"""The mock model behind the surfaces: deterministic providers, tokenizer, schema-conforming values, logprobs,
usage accounting, and the answer cache that replays the bytes of a repeated request."""
