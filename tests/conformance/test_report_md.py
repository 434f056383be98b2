"""report.md through a real Markdown renderer (markdown-it-py, CommonMark with GitHub-style tables)."""

from pathlib import Path

import pytest

from conformance.baseline import Baseline
from conformance.redact import Redactor
from conformance.report import build_results, write_reports
from conformance.report_md import md_code, md_escape, render_markdown
from gateway_spec import Requirement

markdown_it = pytest.importorskip("markdown_it", reason="markdown-it-py (a dev dependency) renders report.md")

REGISTRY = {
    "T-001": Requirement("T-001", "MUST", "Send `x-request-id` with <key> and *stars* | pipes [link](evil) & amp;",
                         "alpha"),
    "T-002": Requirement("T-002", "SHOULD", "1. Not a list, # not a heading", "alpha"),
}
RUN = {"target": "http://gw", "profile": "fake", "requests": 3, "started": "2026-12-02T10:00:00+00:00",
       "finished": "2026-12-02T10:01:00+00:00", "suite_version": "0.1.0", "prompt_tokens": 0, "completion_tokens": 0}


def _violation(rid, expected, received, note=None):
    return {"requirement": rid, "expected": expected, "received": received, "note": note, "untestable": False}


CASES = [
    {"id": "test_a.py::test_one[`x`]", "requirements": {"T-001": "FAIL", "T-002": "WARN"}, "outcome": "FAIL",
     "message": "", "duration_ms": 1.0, "transcript": "> GET /x",
     "violations": [_violation("T-001", "header `x-request-id`", "``` and <b>bold</b>", f"chunk {i}") for i in range(5)]
     + [_violation("T-002", "one line", "line one\nline two with ``` fence")]},
]


def render(tmp_path: Path) -> tuple[str, str]:
    results = build_results(CASES, REGISTRY, Baseline(), RUN)
    write_reports(tmp_path, results, CASES, Redactor())
    md = (tmp_path / "report.md").read_text()
    return md, markdown_it.MarkdownIt("commonmark").enable("table").render(md)


def test_requirement_texts_render_as_written(tmp_path):
    _, html = render(tmp_path)
    # <key> stays visible text (escaped), backticks do not open code spans, nothing turns into a link or list.
    assert "Send `x-request-id` with &lt;key&gt; and *stars* | pipes [link](evil) &amp; amp;" in html
    assert "1. Not a list, # not a heading" in html
    assert '<a href="evil"' not in html and "<b>bold</b>" not in html


def test_expected_and_received_keep_their_backticks_in_code(tmp_path):
    _, html = render(tmp_path)
    assert "<code>header `x-request-id`</code>" in html
    assert "<code>``` and &lt;b&gt;bold&lt;/b&gt;</code>" in html
    assert "<pre><code>line one\nline two with ``` fence\n</code></pre>" in html


def test_each_finding_appears_once_with_relative_links(tmp_path):
    md, html = render(tmp_path)
    assert md.count("### T-001") == 1 and md.count("Expected: `` header") == 1  # five identical violations: one line
    assert "Seen 5 times: chunk 0; chunk 1; chunk 2; and 2 more" in md
    assert str(tmp_path) not in md
    assert '<a href="transcripts/test_a.py_test_one_x.txt">' in html
    assert '<a href="report.html">' in html


def test_escaping_helpers():
    assert md_escape("<key>") == "\\<key\\>"
    assert md_escape("- item") == "\\- item" and md_escape("2026-12-02") == "2026-12-02"
    assert md_code("a`b") == "``a`b``" and md_code("`x`") == "`` `x` ``"
    assert md_code("") == "(empty)"
    assert render_markdown(build_results([], REGISTRY, Baseline(), RUN)).count("None.") == 1


def test_flagged_usage_is_reported_with_what_the_sums_came_from(tmp_path):
    run = {**RUN, "usage_counted": 2, "usage_flagged": 1,
           "usage_flags": ["POST http://gw/v1/chat/completions: completion_tokens=3800000000 is beyond the "
                           "request's max_tokens (16)"]}
    results = build_results(CASES, REGISTRY, Baseline(), run)
    write_reports(tmp_path, results, CASES, Redactor())
    md = (tmp_path / "report.md").read_text()
    assert "completion tokens (from 2 usage objects; 1 implausible ones left out)" in md
    assert "completion_tokens=3800000000 is beyond the request's max_tokens (16)" in md
    page = (tmp_path / "report.html").read_text()
    assert "Usage left out" in page and "3800000000" in page
