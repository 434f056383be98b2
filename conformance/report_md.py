"""``report.md``: the run as Markdown that reads well on a code-hosting site's renderer.

Each finding appears once (per requirement, its cases; identical Expected/Received pairs of one case folded into
one line), links are relative to the report directory, and every text that comes from the registry or from the
gateway is escaped: a requirement sentence is Markdown-escaped (``<key>`` stays visible, a backtick cannot open a
code span), and Expected/Received sit in code spans or fences longer than any backtick run they contain.
"""

from __future__ import annotations

import re
from typing import Any

from conformance.outcomes import NOT_RUN, UNTESTABLE

VERDICTS = ("PASS", "FAIL", "WARN", "XFAIL", "XPASS", "ERROR", "SKIP", UNTESTABLE, NOT_RUN)
FINDINGS = ("FAIL", "XPASS", "ERROR", "WARN")
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")  # the rest of ASCII punctuation is markup only where these are
_LINE_START = re.compile(r"^(\d*)([-+#.)])(?=\s|$)")  # a list item, heading or numbered item at the start


def md_escape(text: Any) -> str:
    """Plain text for Markdown: punctuation that could start markup is backslash-escaped, lines are joined."""
    flat = " ".join(str(text).split())
    return _LINE_START.sub(r"\1\\\2", _SPECIAL.sub(r"\\\1", flat))


def md_code(text: Any) -> str:
    """An inline code span for one-line text (fence longer than any backtick run inside), else a fenced block."""
    value = str(text)
    longest = max((len(m) for m in re.findall(r"`+", value)), default=0)
    if "\n" in value.strip("\n"):
        fence = "`" * max(3, longest + 1)
        return "\n\n" + "\n".join((fence, *value.strip("\n").splitlines(), fence)) + "\n"
    value = value.strip("\n")
    if not value:
        return "(empty)"
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") or value.startswith(" ") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def spent_note(run: dict) -> str:
    """What the token sums are made of: how many usage objects, and how many were left out as implausible."""
    counted, flagged = run.get("usage_counted"), run.get("usage_flagged")
    if counted is None:
        return ""
    return (f" (from {counted} usage objects" + (f"; {flagged} implausible ones left out" if flagged else "")
            + ")")


def render_markdown(results: dict) -> str:
    """Run header, summary per level, then each non-passing requirement once, with its cases."""
    run = results["run"]
    flags = [f"- {md_code(flag)}" for flag in run.get("usage_flags") or []]
    out = [f"# Conformance report: {md_escape(run.get('profile'))} at {md_escape(run.get('target'))}", "",
           "| | |", "|---|---|",
           f"| Target | {md_escape(run.get('target'))} |",
           f"| Profile | {md_escape(run.get('profile'))} |",
           f"| Suite version | {md_escape(run.get('suite_version'))} |",
           f"| Started | {md_escape(run.get('started'))} |",
           f"| Finished | {md_escape(run.get('finished'))} |",
           f"| Spent | {run.get('requests')} requests, {run.get('prompt_tokens')} prompt and "
           f"{run.get('completion_tokens')} completion tokens{spent_note(run)} |",
           "", "Open [report.html](report.html) for the transcripts and raw stream bytes; "
           "[results.json](results.json) has it all for tools.", "",
           *(["Usage left out of the token sums (implausible values):", "", *flags, ""] if flags else []),
           "## Summary", "",
           "| level | " + " | ".join(VERDICTS) + " |", "|---" * (len(VERDICTS) + 1) + "|"]
    for level, counts in sorted(results["summary"]["levels"].items()):
        out.append(f"| {level} | " + " | ".join(str(counts.get(v, 0)) for v in VERDICTS) + " |")
    cases = {c["id"]: c for c in results["cases"]}
    bad = [(rid, r) for rid, r in results["requirements"].items() if r["verdict"] in FINDINGS]
    out += ["", "## Findings", ""]
    if not bad:
        out.append("None.")
    for rid, req in bad:
        out += [f"### {rid} ({req['level']}): {req['verdict']}", "", f"> {md_escape(req['text'])}", ""]
        for ref in req["cases"]:
            out += _case_lines(rid, cases.get(ref["id"]), ref["verdict"])
        out.append("")
    harness = [c for c in results["cases"] if c.get("message") and c["outcome"] == "ERROR"]
    if harness:
        out += ["## Harness errors", "", "The harness or the network failed: these say nothing about the gateway.", ""]
        out += [f"- {md_code(c['id'])}: {md_code(c['message'])}" for c in harness]
    return "\n".join(out).rstrip("\n") + "\n"


def _case_lines(rid: str, case: dict | None, verdict: str) -> list[str]:
    if case is None or verdict not in FINDINGS:
        return []
    lines = [f"- {md_code(case['id'])}: {verdict}"]
    if case.get("message") and case["outcome"] != "ERROR":
        lines.append(f"  - {md_code(case['message'])}")
    seen: dict[tuple, list[str]] = {}
    for v in case.get("violations", []):
        if v["requirement"] == rid:
            seen.setdefault((v.get("untestable"), v["expected"], v["received"]), []).append(v.get("note") or "")
    for (untestable, expected, received), notes in seen.items():
        notes = [n for n in notes if n]
        shown = "; ".join(_clip(n) for n in notes[:3]) + (f"; and {len(notes) - 3} more" if len(notes) > 3 else "")
        if untestable:
            lines.append(f"  - Not testable: {md_escape(', '.join(notes) or 'a prerequisite broke')}")
            continue
        lines += [f"  - Expected:{_indent(md_code(expected))}", f"  - Received:{_indent(md_code(received))}"]
        if notes:
            lines.append(f"  - {'Seen ' + str(len(notes)) + ' times' if len(notes) > 1 else 'Note'}: {md_escape(shown)}")
    if case.get("transcript"):
        lines.append(f"  - Transcript: [{md_escape(case['transcript'])}]({case['transcript']})")
    return lines


def _clip(note: str, limit: int = 160) -> str:
    return note if len(note) <= limit else note[:limit] + "..."


def _indent(block: str) -> str:
    """A fenced block inside a list item: indent its lines under the item."""
    if not block.startswith("\n"):
        return " " + block
    return "\n".join(f"    {line}" if line else "" for line in block.strip("\n").split("\n")).join(("\n\n", "\n"))
