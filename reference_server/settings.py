"""Build a ``ServerConfig`` from CLI values or environment variables (shared by ``__main__`` and ``wsgi``).

Environment: ``REFERENCE_SERVER_PROFILE`` (name or path, default ``openai``), ``REFERENCE_SERVER_FAULTS`` and
``REFERENCE_SERVER_VARIANTS`` (comma-separated), ``REFERENCE_SERVER_KEYS_FILE``, ``REFERENCE_SERVER_KEYS`` (see
``keys.py``), ``REFERENCE_SERVER_CLOCK`` (unix seconds for ``created``), ``REFERENCE_SERVER_STATE`` (``memory`` or
``redis://host:port/db``: where counters, journal, rate limits and scripts live) and ``REFERENCE_SERVER_SCRIPT``
(comma-separated script files, docs/scripts.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from reference_server.config import ServerConfig
from reference_server.policy.keys import load_keys_file, parse_keys
from reference_server.scripting.files import load_script_file


def split_list(value: str | None) -> list[str]:
    """``"A, B,,C"`` -> ``["A", "B", "C"]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def build_config(profile: str = "openai", faults: Iterable[str] = (), variants: Iterable[str] = (),
                 keys_file: str | None = None, keys_text: str | None = None, clock: int | None = None,
                 state: str | None = None, script_files: Iterable[str] = ()) -> ServerConfig:
    """A validated config; unknown profiles, faults or variants and malformed script files raise
    (FileNotFoundError / ValueError)."""
    keys = {}
    if keys_file:
        keys.update(load_keys_file(keys_file))
    if keys_text:
        keys.update(parse_keys(keys_text))
    extra = {"clock": clock} if clock is not None else {}
    scripts = [rule for path in script_files for rule in load_script_file(path)]
    return ServerConfig.for_profile(profile, faults=list(faults), variants=list(variants), keys=keys,
                                    state=state or None, scripts=scripts, **extra)


def config_from_env(env: Mapping[str, str] | None = None) -> ServerConfig:
    """The config the environment describes (for ``gunicorn 'reference_server.wsgi:app'``)."""
    env = os.environ if env is None else env
    clock = env.get("REFERENCE_SERVER_CLOCK")
    return build_config(
        profile=env.get("REFERENCE_SERVER_PROFILE") or "openai",
        faults=split_list(env.get("REFERENCE_SERVER_FAULTS")),
        variants=split_list(env.get("REFERENCE_SERVER_VARIANTS")),
        keys_file=env.get("REFERENCE_SERVER_KEYS_FILE") or None,
        keys_text=env.get("REFERENCE_SERVER_KEYS") or None,
        clock=int(clock) if clock else None,
        state=env.get("REFERENCE_SERVER_STATE") or None,
        script_files=split_list(env.get("REFERENCE_SERVER_SCRIPT")),
    )
