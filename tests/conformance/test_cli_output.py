"""What a user sees first: a quiet clean run, --help leading with the suite's options, a quiet `| head`, the
reference server's banner."""

import subprocess
import sys

from conformance.cli import GROUP_TITLE, lead_with_suite_options
from gateway_spec import load_profile


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


def test_a_clean_run_prints_no_warning_of_the_suite(tmp_path):
    proc = run([sys.executable, "-c", "import sys; from conformance.cli import main; sys.exit(main(sys.argv[1:]))",
                "--requirement", "MODELS-001", "--report-dir", str(tmp_path / "out"), "-p", "no:cacheprovider"],
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "warnings summary" not in proc.stdout and "Warning" not in proc.stdout + proc.stderr


def test_help_leads_with_the_suite_options(tmp_path):
    proc = run([sys.executable, "-c", "import sys; from conformance.cli import main; sys.exit(main(sys.argv[1:]))",
                "--help"], cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("usage: llm-conformance")
    assert lines.index(GROUP_TITLE) < 5 and "--target-url" in "\n".join(lines[:12])
    assert proc.stdout.count(GROUP_TITLE) == 1


def test_lead_with_suite_options_keeps_every_line():
    text = "usage: x\n\npositional:\n  a\n\nLLM gateway conformance:\n  --target-url\n\nother:\n  --b\n"
    moved = lead_with_suite_options(text)
    assert moved.index(GROUP_TITLE) < moved.index("positional:")
    assert sorted(filter(None, moved.splitlines())) == sorted(
        filter(None, [*text.splitlines(), "pytest's own options follow."]))


def test_a_listing_piped_to_head_ends_quietly():
    proc = run(["sh", "-c", f"'{sys.executable}' -m reference_server --list-faults | head -1"])
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 1
    assert proc.stderr == "", proc.stderr


def test_the_server_banner_names_base_url_profile_and_test_key():
    proc = subprocess.Popen([sys.executable, "-m", "reference_server", "--port", "0", "--profile", "unit23"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    profile = load_profile("unit23")
    assert "profile unit23" in banner and f"test key {profile.test_key}" in banner
    assert "/v1 (GET http://127.0.0.1:" in banner and "base URL http://127.0.0.1:" in banner


def test_a_usage_error_names_the_option_as_the_user_typed_it(tmp_path):
    cli = [sys.executable, "-c", "import sys; from conformance.cli import main; sys.exit(main(sys.argv[1:]))"]
    short = run([*cli, "--profile", "no-such-profile", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert short.returncode == 4
    assert "--profile: unknown profile 'no-such-profile'" in short.stderr and "--gw-profile" not in short.stderr
    parse = run([*cli, "--request-timeout", "abc", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert "llm-conformance: error: argument --request-timeout: invalid float value" in parse.stderr, parse.stderr
    long = run([*cli, "--gw-profile", "no-such-profile", "-p", "no:cacheprovider"], cwd=tmp_path)
    assert "--gw-profile: unknown profile 'no-such-profile'" in long.stderr  # typed long, shown long
