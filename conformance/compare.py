"""``llm-conformance compare RUN... --out DIR [--fail-on-regression]``: a matrix across gateways and runs.

Requirements are rows, runs are columns (label, profile, target, date, suite version), and each cell is the
requirement's verdict in that run, linking to the run's report.html. Runs of one target (same ``run.label``) are
put in date order, and each is compared with the one before it: a requirement whose verdict got worse is a
regression, one that got better is a fix. Writes ``matrix.html`` and ``matrix.md``; exit code 1 with
``--fail-on-regression`` when the newest run of some target regressed, 2 when no run could be read.

A RUN is a report directory, its results.json, or any directory holding report directories (searched for
results.json files).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from conformance.report import run_label
from conformance.report_html import badge, e, page
from conformance.report_md import md_escape
from conformance.results_schema import major

# Only these verdicts say how the gateway did; ERROR, SKIP, UNTESTABLE and NOT_RUN are not compared.
RANK = {"PASS": 0, "XPASS": 0, "WARN": 1, "XFAIL": 2, "FAIL": 2}
REGRESSION, FIX = "regressed", "fixed"
SUPPORTED_MAJOR = 1


class CompareError(Exception):
    """A run that cannot be read (the message names the file)."""


@dataclass
class Run:
    """One run's results.json and where it was read from."""

    path: Path
    results: dict

    @property
    def info(self) -> dict:
        return self.results.get("run", {})

    @property
    def label(self) -> str:
        return self.info.get("label") or run_label(self.info)

    @property
    def started(self) -> str:
        return str(self.info.get("started") or "")

    def verdict(self, rid: str) -> str | None:
        req = self.results.get("requirements", {}).get(rid)
        return req.get("verdict") if req else None

    def report(self) -> Path | None:
        html = self.path.parent / "report.html"
        return html if html.is_file() else None


def find_results(paths: list[Path]) -> list[Path]:
    """results.json files named by the arguments (a file, a report dir, or a folder of report dirs)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif (path / "results.json").is_file():
            found.append(path / "results.json")
        elif path.is_dir():
            found += sorted(path.rglob("results.json"))
        else:
            raise CompareError(f"{path}: no such file or directory")
    return list(dict.fromkeys(p.resolve() for p in found))


def load_run(path: Path) -> Run:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CompareError(f"{path}: not a readable results.json ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("requirements"), dict):
        raise CompareError(f"{path}: not a conformance results.json (no requirements)")
    version = major(data.get("schema_version"))
    if version is not None and version > SUPPORTED_MAJOR:
        raise CompareError(f"{path}: schema_version {data['schema_version']} is newer than this suite reads "
                           f"({SUPPORTED_MAJOR}.x); upgrade llm-gateway-conformance")
    return Run(path, data)


def ordered(runs: list[Run]) -> list[Run]:
    """Runs grouped by target label, oldest first within a target."""
    return sorted(runs, key=lambda r: (r.label, r.started, str(r.path)))


def changes(runs: list[Run]) -> dict[tuple[int, str], tuple[str, str]]:
    """``(run index, requirement) -> (regressed|fixed, earlier verdict)`` against the previous run of its target."""
    marks: dict[tuple[int, str], tuple[str, str]] = {}
    previous: dict[str, int] = {}
    for i, run in enumerate(runs):
        before = previous.get(run.label)
        previous[run.label] = i
        if before is None:
            continue
        for rid in run.results["requirements"]:
            old, new = runs[before].verdict(rid), run.verdict(rid)
            if old in RANK and new in RANK and RANK[old] != RANK[new]:
                marks[(i, rid)] = (REGRESSION if RANK[new] > RANK[old] else FIX, old)
    return marks


def requirement_rows(runs: list[Run]) -> dict[str, dict]:
    """Every requirement of any run, in the order of the run that lists most, then the others' extras."""
    rows: dict[str, dict] = {}
    for run in sorted(runs, key=lambda r: -len(r.results["requirements"])):
        for rid, req in run.results["requirements"].items():
            rows.setdefault(rid, req)
    return rows


def newest_regressions(runs: list[Run], marks: dict) -> list[tuple[Run, str, str, str]]:
    """Regressions of each target's newest run: (run, requirement, earlier verdict, verdict now)."""
    newest = {run.label: i for i, run in enumerate(runs)}
    return [(runs[i], rid, old, runs[i].verdict(rid) or "")
            for (i, rid), (kind, old) in sorted(marks.items()) if kind == REGRESSION and newest[runs[i].label] == i]


def _rel(target: Path | None, out_dir: Path) -> str | None:
    return None if target is None else Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()


def render_md(runs: list[Run], marks: dict, out_dir: Path) -> str:
    rows = requirement_rows(runs)
    out = ["# Conformance matrix", "", "Runs (columns), oldest first within each target:", ""]
    for n, run in enumerate(runs, 1):
        info, link = run.info, _rel(run.report(), out_dir)
        out.append(f"{n}. **{md_escape(run.label)}**: profile {md_escape(info.get('profile'))}, target "
                   f"{md_escape(info.get('target'))}, {md_escape(run.started)}, suite {md_escape(info.get('suite_version'))}"
                   + (f", [report]({link})" if link else ""))
    regressions = [(i, rid, old) for (i, rid), (kind, old) in sorted(marks.items()) if kind == REGRESSION]
    fixes = [(i, rid, old) for (i, rid), (kind, old) in sorted(marks.items()) if kind == FIX]
    out += ["", f"## Changes against the previous run of the same target: {len(regressions)} regressions, "
            f"{len(fixes)} fixes", ""]
    for kind, items in (("Regression", regressions), ("Fix", fixes)):
        out += [f"- {kind} in run {i + 1} ({md_escape(runs[i].label)}): {rid} {old} to {runs[i].verdict(rid)}"
                for i, rid, old in items]
    out += ["", "## Verdicts", "", "| requirement | " + " | ".join(f"{n}" for n in range(1, len(runs) + 1)) + " |",
            "|---" * (len(runs) + 1) + "|"]
    links = [_rel(run.report(), out_dir) for run in runs]
    for rid, req in rows.items():
        cells = []
        for i, run in enumerate(runs):
            verdict = run.verdict(rid)
            if verdict is None:
                cells.append("")
                continue
            text = f"[{verdict}]({links[i]}#req-{rid})" if links[i] else verdict
            mark = marks.get((i, rid))
            cells.append(text + (f" ({mark[0]})" if mark else ""))
        out.append(f"| {rid} ({req.get('level')}) | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


_MATRIX_CSS_SCRIPT = """
(function () {
  var box = document.getElementById('only-diff');
  function apply() {
    document.querySelectorAll('tr.row').forEach(function (tr) {
      tr.hidden = box.checked && tr.getAttribute('data-differs') !== 'yes';
    });
  }
  box.addEventListener('change', apply);
  apply();
})();
"""


def render_html(runs: list[Run], marks: dict, out_dir: Path) -> str:
    rows = requirement_rows(runs)
    links = [_rel(run.report(), out_dir) for run in runs]
    head = ["<th>requirement</th>"]
    for i, run in enumerate(runs):
        info = run.info
        name = f'<a href="{e(links[i])}">{e(run.label)}</a>' if links[i] else e(run.label)
        head.append(f'<th class="run" data-label="{e(run.label)}">#{i + 1} {name}<br><small>profile '
                    f'{e(info.get("profile"))}<br>target {e(info.get("target"))}<br>{e(run.started)}<br>suite '
                    f'{e(info.get("suite_version"))}</small></th>')
    body = []
    for rid, req in rows.items():
        verdicts = [run.verdict(rid) for run in runs]
        differs = "yes" if len({v for v in verdicts if v}) > 1 or any((i, rid) in marks for i in range(len(runs))) \
            else "no"
        cells = []
        for i, verdict in enumerate(verdicts):
            if verdict is None:
                cells.append('<td class="none">-</td>')
                continue
            inner = badge(verdict)
            if links[i]:
                inner = f'<a href="{e(links[i])}#req-{e(rid)}">{inner}</a>'
            mark = marks.get((i, rid))
            if mark:
                inner += f' <span class="mark {e(mark[0])}" title="was {e(mark[1])}">{e(mark[0])}</span>'
            cells.append(f'<td data-verdict="{e(verdict)}">{inner}</td>')
        body.append(f'<tr class="row" id="row-{e(rid)}" data-differs="{differs}"><th title="{e(req.get("text"))}">'
                    f'{e(rid)} <small>{e(req.get("level"))}</small></th>{"".join(cells)}</tr>')
    regressions = sum(1 for kind, _ in marks.values() if kind == REGRESSION)
    fixes = len(marks) - regressions
    summary = (f'<p id="changes"><span id="regressions">{regressions}</span> regressions and <span id="fixes">{fixes}'
               "</span> fixes against the previous run of the same target.</p>")
    body_html = (f'<header><div class="wrap"><h1>Conformance matrix</h1><p>{len(runs)} runs, {len(rows)} requirements. '
                 f'Cells link to the run\'s report.</p>{summary}<label><input type="checkbox" id="only-diff"> only '
                 'requirements whose verdict differs between runs</label></div></header>'
                 f'<main><table class="matrix" id="matrix"><tr>{"".join(head)}</tr>{"".join(body)}</table></main>')
    return page("Conformance matrix", body_html, _MATRIX_CSS_SCRIPT)


def compare(paths: list[Path], out_dir: Path) -> tuple[list[Run], dict, list[Path]]:
    """Read the runs, write matrix.html and matrix.md into ``out_dir``; returns runs, change marks and files."""
    files = find_results(paths)
    if not files:
        raise CompareError("no results.json found in " + ", ".join(str(p) for p in paths))
    runs = ordered([load_run(f) for f in files])
    marks = changes(runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (("matrix.html", render_html(runs, marks, out_dir)), ("matrix.md", render_md(runs, marks, out_dir))):
        (out_dir / name).write_text(text, encoding="utf-8")
        written.append(out_dir / name)
    return runs, marks, written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-conformance compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN",
                        help="report dir, results.json, or a folder of report dirs")
    parser.add_argument("--out", type=Path, default=Path("."), help="where matrix.html and matrix.md go")
    parser.add_argument("--fail-on-regression", action="store_true",
                        help="exit 1 when the newest run of a target regressed against the run before it")
    args = parser.parse_args(argv)
    try:
        runs, marks, written = compare(args.runs, args.out)
    except CompareError as exc:
        print(f"llm-conformance compare: {exc}", file=sys.stderr)
        return 2
    regressed = newest_regressions(runs, marks)
    print(f"{len(runs)} runs, {len(marks)} changes ({len(regressed)} regressions in the newest runs): "
          + ", ".join(str(p) for p in written))
    for run, rid, old, new in regressed:
        print(f"  regression: {run.label} {rid} {old} -> {new}")
    return 1 if regressed and args.fail_on_regression else 0


if __name__ == "__main__":
    sys.exit(main())
