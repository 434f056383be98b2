"""The token rule: ``count_tokens`` (a fast path for ASCII text) always agrees with ``tokenize``."""

import random

import pytest

from reference_server.mock.tokenizer import TOKEN_PATTERN, count_tokens, tokenize

# Every ASCII character (controls, \x1c-\x1f which str.isspace counts as whitespace, "_") plus non-ASCII letters,
# digits, spaces and symbols, which take the regular-expression path.
ALPHABET = [chr(i) for i in range(128)] + ["é", "ü", "日", "٣", "\u2028", "\xa0", "\u3000", "😀", "—"]


@pytest.mark.parametrize("text", ["", "Hello, world!", "snake_case_name", "  \n\n\t x\x1c\x1fy ", "naïve café",
                                  "a1_b2-c3", "v000000000001 word1 word2", "!!!", "_", "\x0b\x0c"])
def test_count_tokens_matches_tokenize(text):
    assert count_tokens(text) == len(tokenize(text))
    assert "".join(tokenize(text)) == text


def test_count_tokens_matches_the_pattern_on_random_text():
    rnd = random.Random(7)
    for trial in range(20000):
        alphabet = ALPHABET if trial % 4 == 0 else ALPHABET[:128]
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 24)))
        assert count_tokens(text) == len(TOKEN_PATTERN.findall(text)), repr(text)


def test_count_tokens_of_nothing():
    assert count_tokens(None) == 0
