"""``report.html``: one self-contained page per run (inline CSS and JS, no network, opens from disk).

Run header, summary by level and area, filters by outcome and area, failures grouped by root cause (requirements
whose failing cases share an exchange or a case), each requirement with its sentence and Expected beside
Received, the redacted transcripts and raw SSE bytes (CR/LF visible, arrival times) folded under it, then every
requirement in one table.

A gateway controls much of the text shown here, so every value goes through ``html.escape``, and the page's
Content-Security-Policy allows only its own inline style and script (by hash) and no network at all: even a
missed escape could not run a script or fetch anything.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import Counter
from typing import Any

from conformance.outcomes import NOT_RUN, SEVERITY, UNTESTABLE
from conformance.report_md import spent_note

VERDICTS = ("FAIL", "XPASS", "ERROR", "WARN", "XFAIL", "PASS", "SKIP", UNTESTABLE, NOT_RUN)
FINDINGS = ("FAIL", "XPASS", "ERROR", "WARN", "XFAIL")
LEVELS = ("MUST", "SHOULD", "MAY")

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d232b;background:#f6f7f9}
header{background:#fff;border-bottom:1px solid #dde1e6}.wrap,main{max-width:1180px;margin:0 auto;padding:10px 20px}
.tables{display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start}
h1{font-size:20px;margin:6px 0}h2{font-size:17px;margin:22px 0 8px}h3{font-size:15px;margin:0 0 6px}
dl.run{display:grid;grid-template-columns:max-content 1fr max-content 1fr;gap:2px 14px;margin:6px 0}
dl.run dt{color:#5b6470}dl.run dd{margin:0;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:8px}.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;
padding:6px 12px;min-width:74px}.card .n{display:block;font-size:22px;font-weight:600}
table{border-collapse:collapse;background:#fff}th,td{border:1px solid #dde1e6;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#eef0f3}td.num{text-align:right}td.zero{color:#b5bbc3}
.v{display:inline-block;padding:0 6px;border-radius:4px;font-weight:600;font-size:12px}
.v-FAIL,.v-XPASS{background:#fde2e1;color:#a3191b}.v-ERROR{background:#f3e0fb;color:#6b1c8a}
.v-WARN{background:#fff1cc;color:#7a5200}.v-XFAIL{background:#e6e9ee;color:#48505a}
.v-PASS{background:#dff5e3;color:#17692c}.v-SKIP,.v-UNTESTABLE,.v-NOT_RUN{background:#eef0f3;color:#5b6470}
.filters{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:8px 12px;display:flex;
flex-wrap:wrap;gap:6px 14px;align-items:center;position:sticky;top:0;z-index:1}
.group{background:#fff;border:1px solid #dde1e6;border-left:4px solid #a3191b;border-radius:6px;padding:10px 14px;
margin:10px 0}.group.w{border-left-color:#d49b00}.cause{color:#5b6470;margin:0 0 8px}
.finding{margin:10px 0 4px}blockquote{margin:4px 0 8px;padding:4px 10px;border-left:3px solid #c5cbd3;
color:#30363d;background:#f6f7f9}.er{display:grid;grid-template-columns:1fr 1fr;gap:8px;margin:4px 0}
.er>div{min-width:0}.er h4{margin:0;font-size:12px;color:#5b6470;text-transform:uppercase}
pre{margin:2px 0;padding:6px 8px;background:#f6f7f9;border:1px solid #e3e6ea;border-radius:4px;white-space:pre-wrap;
overflow-wrap:anywhere;font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.exp pre{border-color:#b7dfc0}.rec pre{border-color:#f1b8b6}.note,.case{color:#5b6470}
details{margin:4px 0}summary{cursor:pointer;color:#1f5fbf}.ctl{color:#c0392b;background:#fdeceb;border-radius:2px;
font-weight:600}table.sse td.ms{white-space:nowrap;color:#5b6470}table.sse pre{border:0;background:none;padding:0}
.reqs td:first-child{white-space:nowrap}
.mark{font-size:11px;font-weight:600;padding:0 4px;border-radius:3px;color:#fff}.mark.regressed{background:#a3191b}
.mark.fixed{background:#17692c}table.matrix th.run{font-weight:normal;min-width:140px;vertical-align:bottom}
table.matrix td{white-space:nowrap}table.matrix a{text-decoration:none}small{color:#5b6470}
"""

SCRIPT = """
(function () {
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="outcome"]'));
  var area = document.getElementById('filter-area');
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    var shown = 0;
    document.querySelectorAll('.filterable').forEach(function (el) {
      var ok = on[el.getAttribute('data-verdict')] && (!area.value || el.getAttribute('data-area') === area.value);
      el.hidden = !ok;
      if (ok && el.tagName === 'TR') { shown += 1; }
    });
    document.querySelectorAll('.group').forEach(function (g) {
      g.hidden = !g.querySelector('.finding:not([hidden])');
    });
    document.getElementById('shown').textContent = String(shown);
  }
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  area.addEventListener('change', apply);
  apply();
})();
"""


def e(value: Any) -> str:
    """HTML-escaped text (quotes too: values also go into attributes)."""
    return html.escape("" if value is None else str(value), quote=True)


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


def page(title: str, body: str, script: str = "") -> str:
    """A complete self-contained page: the CSP allows its inline style and script only, and no network."""
    script_src = _hash(script) if script else "'none'"
    csp = (f"default-src 'none'; style-src {_hash(CSS)}; script-src {script_src}; img-src data:; base-uri 'none'; "
           "form-action 'none'")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{e(csp)}\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{e(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
            + (f"<script>{script}</script>" if script else "") + "</body></html>\n")


def badge(verdict: str) -> str:
    return f'<span class="v v-{e(verdict)}">{e(verdict)}</span>'


def visible_bytes(text: str) -> str:
    """Escaped stream text with CR and LF shown as visible marks (an LF also breaks the line)."""
    out = e(text).replace("\r", '<span class="ctl">\\r</span>')
    return out.replace("\n", '<span class="ctl">\\n</span>\n')


def render_html(results: dict, transcripts: dict[str, str] | None = None) -> str:
    """The whole report page; ``transcripts`` maps case id to its redacted transcript text."""
    run, reqs = results["run"], results["requirements"]
    title = f"Conformance report: {run.get('profile')} at {run.get('target')}"
    parts = [f'<header><div class="wrap"><h1>{e(title)}</h1>{_run_header(run)}</div></header>', "<main>",
             _summary(results), _filters(reqs), _findings(results, transcripts or {}), _requirement_table(reqs),
             "</main>"]
    return page(title, "\n".join(parts), SCRIPT)


def _run_header(run: dict) -> str:
    spent = (f"{run.get('requests', 0)} requests, {run.get('prompt_tokens', 0)} prompt + "
             f"{run.get('completion_tokens', 0)} completion tokens{spent_note(run)}")
    rows = [("Target", run.get("target")), ("Profile", run.get("profile")),
            ("Suite version", run.get("suite_version")), ("Date", f"{run.get('started')} to {run.get('finished')}"),
            ("Spent", spent), ("Fail on", run.get("fail_on"))]
    if run.get("usage_flags"):
        rows.append(("Usage left out", "; ".join(run["usage_flags"])))
    if run.get("baseline"):
        rows.append(("Baseline", run["baseline"]))
    for key, name in (("server_faults", "Server faults"), ("server_variants", "Server variants")):
        if run.get(key):
            rows.append((name, ", ".join(run[key])))
    return '<dl class="run">' + "".join(
        f'<dt>{e(k)}</dt><dd data-field="{e(k.lower().replace(" ", "-"))}">{e(v)}</dd>' for k, v in rows) + "</dl>"


def _summary(results: dict) -> str:
    reqs = results["requirements"]
    counts = Counter(r["verdict"] for r in reqs.values())
    cards = "".join(f'<div class="card"><span class="n" id="count-{e(v)}">{counts.get(v, 0)}</span>{badge(v)}</div>'
                    for v in VERDICTS if counts.get(v) or v in ("PASS", "FAIL", "WARN"))
    present = [v for v in VERDICTS if counts.get(v)]
    by_level = _count_table("level", LEVELS, lambda r: r["level"], reqs, present)
    areas = sorted({r["area"] for r in reqs.values()})
    by_area = _count_table("area", areas, lambda r: r["area"], reqs, present)
    cases = results.get("summary", {}).get("cases", {})
    case_line = ", ".join(f"{n} {e(v)}" for v, n in sorted(cases.items(), key=lambda kv: -SEVERITY.get(kv[0], 0)))
    return (f'<h2>Summary</h2><p>{len(reqs)} requirements; cases: {case_line or "none"}.</p>'
            f'<div class="cards" id="summary-cards">{cards}</div>'
            f'<div class="tables"><div><h2>By level</h2>{by_level}</div><div><h2>By area</h2>{by_area}</div></div>')


def _count_table(name: str, keys, key_of, reqs: dict, verdicts: list[str]) -> str:
    grid: dict[str, Counter] = {k: Counter() for k in keys}
    for r in reqs.values():
        grid.setdefault(key_of(r), Counter())[r["verdict"]] += 1
    head = f"<tr><th>{e(name)}</th>" + "".join(f"<th>{badge(v)}</th>" for v in verdicts) + "</tr>"
    rows = []
    for key, counts in grid.items():
        if not counts:
            continue
        cells = "".join(f'<td class="num{" zero" if not counts.get(v) else ""}">{counts.get(v, 0)}</td>'
                        for v in verdicts)
        rows.append(f'<tr data-{e(name)}="{e(key)}"><th>{e(key)}</th>{cells}</tr>')
    return f'<table class="counts" id="by-{e(name)}">{head}{"".join(rows)}</table>'


def _filters(reqs: dict) -> str:
    present = [v for v in VERDICTS if any(r["verdict"] == v for r in reqs.values())]
    boxes = "".join(f'<label><input type="checkbox" name="outcome" value="{e(v)}" checked> {badge(v)}</label>'
                    for v in present)
    areas = "".join(f'<option value="{e(a)}">{e(a)}</option>' for a in sorted({r["area"] for r in reqs.values()}))
    return (f'<h2>Filters</h2><div class="filters" id="filters"><span>Outcome:</span>{boxes}'
            f'<label>Area: <select id="filter-area"><option value="">all areas</option>{areas}</select></label>'
            f'<span><span id="shown">{len(reqs)}</span> of {len(reqs)} requirements shown</span></div>')


def root_cause_groups(results: dict) -> list[list[str]]:
    """Non-passing requirements grouped by root cause: two are in one group when their non-passing cases are the
    same case or judged the same exchanges (the same set of ``x-request-id``s: cases that read one session-cached
    stream). Sharing just one exchange is not enough: many cases also reuse, say, one models listing, and unrelated
    failures would merge. Worst group first, requirements in registry order."""
    reqs, cases = results["requirements"], {c["id"]: c for c in results["cases"]}
    findings = [rid for rid, r in reqs.items() if r["verdict"] in FINDINGS]
    parent = {rid: rid for rid in findings}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = x = parent[parent[x]]
        return x

    owner: dict[tuple, str] = {}
    for rid in findings:
        for ref in reqs[rid]["cases"]:
            if ref["verdict"] not in FINDINGS:
                continue
            ids = frozenset(i for i in (cases.get(ref["id"]) or {}).get("request_ids") or [] if i)
            for key in [("case", ref["id"]), *([("exchanges", ids)] if ids else [])]:
                if key in owner:
                    parent[root(rid)] = root(owner[key])
                else:
                    owner[key] = rid
    groups: dict[str, list[str]] = {}
    for rid in findings:
        groups.setdefault(root(rid), []).append(rid)
    order = {rid: i for i, rid in enumerate(reqs)}
    return sorted(groups.values(), key=lambda g: (-max(SEVERITY.get(reqs[r]["verdict"], 0) for r in g),
                                                  min(order[r] for r in g)))


def _findings(results: dict, transcripts: dict[str, str]) -> str:
    reqs, cases = results["requirements"], {c["id"]: c for c in results["cases"]}
    groups = root_cause_groups(results)
    if not groups:
        return '<h2>Findings</h2><p id="no-findings">No requirement failed or warned.</p>'
    out = [f'<h2>Findings</h2><p>{sum(len(g) for g in groups)} requirements did not pass, '
           f'in {len(groups)} groups by root cause.</p>']
    for n, group in enumerate(groups, 1):
        group_cases = [ref["id"] for rid in group for ref in reqs[rid]["cases"] if ref["verdict"] in FINDINGS]
        group_cases = list(dict.fromkeys(group_cases))
        worst = max((reqs[r]["verdict"] for r in group), key=lambda v: SEVERITY.get(v, 0))
        kind = "" if worst in ("FAIL", "XPASS", "ERROR") else " w"
        out.append(f'<section class="group{kind}" id="group-{n}">')
        if len(group) > 1:
            out.append(f'<p class="cause">One root cause: {len(group)} requirements did not pass in '
                       f'{_exchange_phrase(group_cases, cases)}.</p>')
        for rid in group:
            out.append(_finding(rid, reqs[rid], cases))
        for cid in group_cases:
            out.append(_evidence(cid, cases.get(cid) or {}, transcripts.get(cid)))
        out.append("</section>")
    return "\n".join(out)


def _exchange_phrase(case_ids: list[str], cases: dict) -> str:
    ids = [i for cid in case_ids for i in (cases.get(cid) or {}).get("request_ids") or [] if i]
    shared = [i for i, n in Counter(ids).items() if n > 1]
    if shared:
        return "the same exchange (x-request-id " + ", ".join(f"<code>{e(i)}</code>" for i in shared[:3]) + ")"
    return "the same case" if len(case_ids) == 1 else "the same exchanges"


def _finding(rid: str, req: dict, cases: dict) -> str:
    out = [f'<div class="finding filterable" id="finding-{e(rid)}" data-verdict="{e(req["verdict"])}" '
           f'data-area="{e(req["area"])}"><h3>{badge(req["verdict"])} <a href="#req-{e(rid)}">{e(rid)}</a> '
           f'({e(req["level"])}, {e(req["area"])})</h3><blockquote class="requirement">{e(req["text"])}</blockquote>']
    for ref in req["cases"]:
        if ref["verdict"] not in FINDINGS:
            continue
        case = cases.get(ref["id"]) or {}
        out.append(f'<div class="case-block"><p class="case">Case <code>{e(ref["id"])}</code>: '
                   f'{badge(ref["verdict"])}</p>')
        if case.get("message"):
            out.append(f'<pre class="message">{e(case["message"])}</pre>')
        seen: dict[tuple, list[str]] = {}
        for v in case.get("violations", []):
            if v["requirement"] == rid:
                seen.setdefault((bool(v.get("untestable")), v["expected"], v["received"]), []).append(v.get("note") or "")
        for (untestable, expected, received), notes in seen.items():
            notes = [x for x in notes if x]
            if untestable:
                out.append(f'<p class="untestable">Not testable: {e("; ".join(notes) or "a prerequisite broke")}</p>')
                continue
            out.append(f'<div class="er"><div class="exp"><h4>Expected</h4><pre>{e(expected)}</pre></div>'
                       f'<div class="rec"><h4>Received</h4><pre>{e(received)}</pre></div></div>')
            if notes:
                more = f"; and {len(notes) - 3} more" if len(notes) > 3 else ""
                shown = "; ".join(n if len(n) <= 200 else n[:200] + "..." for n in notes[:3])
                out.append(f'<p class="note">{"Seen " + str(len(notes)) + " times: " if len(notes) > 1 else ""}'
                           f'{e(shown)}{more}</p>')
        out.append("</div>")
    out.append("</div>")
    return "".join(out)


def _evidence(cid: str, case: dict, transcript: str | None) -> str:
    out = []
    if transcript:
        out.append(f'<details class="transcript"><summary>Transcript of <code>{e(cid)}</code> (redacted)</summary>'
                   f"<pre>{e(transcript)}</pre></details>")
    for n, stream in enumerate(case.get("streams") or [], 1):
        timing = ", ".join(f"{name} {stream[key]} ms" for name, key in (
            ("headers", "headers_ms"), ("first byte", "first_byte_ms"), ("total", "elapsed_ms"))
            if stream.get(key) is not None)
        rows = "".join(f'<tr><td class="ms">+{e(chunk["ms"])} ms</td><td><pre>{visible_bytes(chunk["text"])}</pre>'
                       "</td></tr>" for chunk in stream.get("chunks", []))
        cut = " (cut to the first bytes kept)" if stream.get("truncated") else ""
        out.append(f'<details class="sse"><summary>Raw SSE bytes #{n} of <code>{e(cid)}</code>: '
                   f'{e(stream.get("request"))}, HTTP {e(stream.get("status"))}, '
                   f'{len(stream.get("chunks", []))} chunks, {e(stream.get("bytes"))} bytes{cut}; {e(timing)}'
                   f'</summary><table class="sse"><tr><th>arrived</th><th>bytes (\\r \\n shown)</th></tr>{rows}'
                   "</table></details>")
    return "".join(out)


def _requirement_table(reqs: dict) -> str:
    rows = []
    for rid, r in reqs.items():
        link = f' <a href="#finding-{e(rid)}">details</a>' if r["verdict"] in FINDINGS else ""
        rows.append(f'<tr class="filterable" id="req-{e(rid)}" data-verdict="{e(r["verdict"])}" '
                    f'data-area="{e(r["area"])}"><td>{e(rid)}</td><td>{e(r["level"])}</td><td>{e(r["area"])}</td>'
                    f'<td>{badge(r["verdict"])}{link}</td><td>{e(r["text"])}</td></tr>')
    return ('<h2>All requirements</h2><table class="reqs" id="requirements"><tr><th>ID</th><th>level</th>'
            f'<th>area</th><th>verdict</th><th>requirement</th></tr>{"".join(rows)}</table>')
