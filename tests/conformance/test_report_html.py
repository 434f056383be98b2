"""report.html without a browser: grouping by root cause, escaping, self-containment (the browser tests are in
test_report_browser.py)."""

import re

from conformance.report_html import render_html, root_cause_groups, visible_bytes


def _req(verdict, area="alpha", cases=()):
    return {"level": "MUST", "area": area, "feature": None, "text": "t", "verdict": verdict, "untestable": None,
            "cases": [{"id": c, "verdict": verdict} for c in cases]}


def _case(cid, ids, outcome="FAIL"):
    return {"id": cid, "outcome": outcome, "message": "", "request_ids": ids, "violations": [], "streams": []}


RESULTS = {
    "run": {"target": "http://gw", "profile": "p"}, "summary": {"cases": {"FAIL": 4}},
    "requirements": {"A-001": _req("FAIL", cases=["c1"]), "A-002": _req("FAIL", cases=["c2"]),
                     "A-003": _req("WARN", cases=["c3"]), "A-004": _req("FAIL", cases=["c4"]),
                     "A-005": _req("PASS", cases=["c1"]), "A-006": _req("FAIL", cases=["c1"])},
    "cases": [_case("c1", ["r1", "r2"]), _case("c2", ["r2", "r1"]), _case("c3", ["r2", "r9"], "WARN"),
              _case("c4", [None])],
}


def test_root_cause_groups_join_the_same_case_or_the_same_exchanges_only():
    # c1 and c2 judged the same two exchanges: one group (with A-006, also failing in c1); c3 shares only r2.
    assert root_cause_groups(RESULTS) == [["A-001", "A-002", "A-006"], ["A-004"], ["A-003"]]


def test_page_is_self_contained_and_scripts_only_its_own():
    page = render_html(RESULTS, {})
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing loaded from anywhere
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src &#x27;none&#x27;" in csp and "script-src &#x27;sha256-" in csp
    assert page.count("<script>") == 1 and page.count("<style>") == 1


def test_everything_from_the_target_is_escaped():
    evil = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    results = {"run": {"target": evil, "profile": evil}, "summary": {},
               "requirements": {"A-001": {**_req("FAIL", area=evil, cases=[evil]), "text": evil}},
               "cases": [{**_case(evil, [evil]), "message": evil,
                          "violations": [{"requirement": "A-001", "expected": evil, "received": evil, "note": evil,
                                          "untestable": False}],
                          "streams": [{"request": evil, "status": 200, "bytes": 3, "headers_ms": 1.0,
                                       "chunks": [{"ms": 1.5, "text": evil + "\r\n"}]}]}]}
    page = render_html(results, {evil: evil})
    assert "<img" not in page and "alert(1)</script>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 8


def test_visible_bytes_shows_cr_and_lf():
    assert visible_bytes("data: <x>\r\n\r\n") == (
        'data: &lt;x&gt;<span class="ctl">\\r</span><span class="ctl">\\n</span>\n'
        '<span class="ctl">\\r</span><span class="ctl">\\n</span>\n')
