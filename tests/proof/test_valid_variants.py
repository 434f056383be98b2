"""No-false-alarm matrix: the suite passes against every valid variant of the reference server.

A variant switches on behaviour the contract allows (CRLF line ends, keep-alive comments, extra fields, ...). With
it on, no requirement may FAIL or ERROR, no WARN may appear that the clean run of the profile lacks, and nothing
the clean run passes may stop passing; except that a variant of a relaxed SHOULD (``VARIANT_WARNS``) must WARN
exactly its relaxed requirements. The clean runs themselves must be free of FAIL, WARN and ERROR in every
bundled profile: a matrix row measured against a failing baseline would prove nothing.
"""

from __future__ import annotations

import pytest

import gateway_spec
from reference_server.faults.variants import VARIANTS
from tests.proof import matrix

# Where a variant is meaningful beyond the default profile (openai claims streaming and stream-usage, so every
# stream variant acts there); Ollama's /v1 sends finish_reason on its own chunk, so that variant is its dialect.
VARIANT_PROFILES = {"finish-separate": ("openai", "ollama"),
                    # acts only where the doc states no unknown-model status (MODELS-009 once demanded 404 there)
                    "unknown-model-400": ("wallet-gateway", "unified-llm-gateway"),
                    # the one profile whose /models documents prices and context length (MODELS-018/019)
                    "model-fields-renamed": ("unified-llm-gateway",)}
BAD = ("FAIL", "ERROR", "XPASS")
# Variants of relaxed requirements (docs/requirements.md, level changes) whose behaviour the level rule makes a SHOULD:
# valid, so never a FAIL, but a WARN of exactly these requirements (and nothing else moves). They once failed.
VARIANT_WARNS = {"cache-miss": {"USAGE-016"},
                 "tool-args-unparsed": {"TOOLS-009", "TOOLS-016", "SDK-004", "SDK-005"},
                 "schema-loose": {"STRUCTURED-OUTPUT-003"},
                 "params-clamped": {"PARAMS-008", "PARAMS-009", "PARAMS-010"}}


def _rows():
    for name in VARIANTS:
        for profile in VARIANT_PROFILES.get(name, ("openai",)):
            yield pytest.param(name, profile, id=f"{name}@{profile}")


@pytest.mark.parametrize("profile", gateway_spec.profile_names())
def test_clean_run_has_no_failure_warning_or_error(profile, baselines):
    clean = baselines.get(profile)
    bad = {rid: v for rid, v in clean.verdicts.items() if v in (*BAD, "WARN")}
    assert not bad, f"the suite is not clean against the reference server in {profile}:\n" + "\n".join(
        f"  {rid}: {v}\n" + "\n".join(f"      {c}" for c in clean.cases_for(rid)[:3]) for rid, v in bad.items())


@pytest.mark.parametrize(("variant", "profile"), list(_rows()))
def test_variant_raises_no_false_alarm(variant, profile, baselines, matrix_dir, record_row):
    clean = baselines.get(profile)
    run = matrix.run_suite(profile, matrix_dir / f"variant-{variant}-{profile}", variants=(variant,))
    warns = VARIANT_WARNS.get(variant, set())
    alarms = {rid: (old, new) for rid, (old, new) in matrix.changed_verdicts(clean, run).items()
              if new in BAD or (new == "WARN" and rid not in warns) or (old == "PASS" and not (new == "WARN"
                                                                                           and rid in warns))}
    missing = sorted(rid for rid in warns if run.verdicts.get(rid) != "WARN")
    assert not missing, f"--gw-server-variant {variant} should WARN {missing} (its relaxed requirements), got " + \
        ", ".join(f"{rid}: {run.verdicts.get(rid, 'NOT_RUN')}" for rid in missing)
    record_row(kind="variant", id=variant, profile=profile, status="holds" if not alarms else "false alarm")
    assert not alarms, (f"--gw-server-variant {variant} ({VARIANTS[variant]}) is valid, yet the suite moved:\n"
                        + matrix.describe_changes(alarms, run))
