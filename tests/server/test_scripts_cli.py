"""``--script FILE`` and ``--state URL`` on the command line, and their environment forms."""

from __future__ import annotations

import pytest

from reference_server.__main__ import main
from reference_server.scripting.files import load_script_file
from reference_server.settings import config_from_env
from tests.redis_server import free_port


def test_a_malformed_script_is_a_usage_error_naming_rule_and_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - respond: {status: 503}\n  - match: {nth: zero}\n    respond: {}\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--script", str(path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ") and f"--script: script file {path}: rules[1].match.nth: must be an integer" in err


def test_an_unreadable_script_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--script", str(tmp_path / "missing.json")])
    assert "missing.json" in capsys.readouterr().err


def test_an_unreachable_state_store_is_one_line_naming_it(capsys):
    url = f"redis://127.0.0.1:{free_port()}/0"
    assert main(["--state", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"llm-reference-server: error: state store {url} unavailable")


def test_script_files_in_json_and_yaml_and_from_the_environment(tmp_path):
    (tmp_path / "a.json").write_text('[{"match": {"nonce": "abcdef"}, "respond": {"status": 429}}]')
    (tmp_path / "b.yaml").write_text("rules:\n  - id: mine\n    respond: {content: hi}\n")
    assert [r["id"] for r in load_script_file(tmp_path / "a.json")] == ["script-0"]
    config = config_from_env({"REFERENCE_SERVER_SCRIPT": f"{tmp_path / 'a.json'},{tmp_path / 'b.yaml'}",
                              "REFERENCE_SERVER_STATE": "memory"})
    assert [r["id"] for r in config.scripts] == ["script-0", "mine"] and config.state == "memory"
    from reference_server import create_app

    client = create_app(config).test_client()
    assert [r["id"] for r in client.get("/_mock/scripts").get_json()["rules"]] == ["script-0", "mine"]
