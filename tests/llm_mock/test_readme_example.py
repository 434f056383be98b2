"""The README's worked example, run as written: an app's own test with openai-python, a scripted 503 and the
request the app's code sent, read back from the journal."""

from openai import OpenAI


# --- the application under test (myapp.py) ------------------------------------------------------------------
def summarize(client: OpenAI, text: str) -> str:
    resp = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "Summarize in one line."}, {"role": "user", "content": text}],
        temperature=0,
    )
    return resp.choices[0].message.content


# --- its test (test_myapp.py) --------------------------------------------------------------------------------
def test_summarize_retries_after_a_503(llm_mock):
    llm_mock.add_rule(prompt_contains="quarterly report", respond=[
        {"status": 503, "headers": {"retry-after-ms": "10"}},  # the first attempt fails
        {"content": "Revenue grew 12%."},                       # the retry gets this answer
    ])
    client = OpenAI(base_url=llm_mock.base_url, api_key=llm_mock.api_key, max_retries=2)

    assert summarize(client, "The quarterly report says revenue grew 12%.") == "Revenue grew 12%."

    first, retry = llm_mock.journal
    assert [first["response"]["status"], retry["response"]["status"]] == [503, 200]
    assert retry["headers"]["X-Stainless-Retry-Count"] == "1"
    assert retry["body"] == first["body"]  # the retry resent the same request
    assert retry["body"]["messages"][0] == {"role": "system", "content": "Summarize in one line."}
    assert retry["body"]["temperature"] == 0
