"""Model discovery for profiles with ``models.discover`` (the bundled ``openai-compatible``): against
``--target-url`` the chat models come from the gateway's own ``GET {base}/models``, or ``--gw-model``.

The profile's own model list stays what the embedded reference server serves. One GET per pytest process (each
xdist worker builds its own profile); when it fails, the profile is left as it is and the preflight (or the
checks) say why.
"""

from __future__ import annotations

import re
from typing import Any

from gateway_spec import Profile

EMBEDDING_ID = re.compile(r"embed", re.IGNORECASE)  # ids that name embedding models are not chat models


def list_models(target_url: str, base_path: str, api_key: str | None, headers: tuple[tuple[str, str], ...],
                timeout: float) -> list[dict] | None:
    """The ``data`` entries of ``GET {target}{base_path}/models``, or None when it fails or is not a list."""
    import httpx

    sent = dict(headers)
    if api_key:
        sent.setdefault("Authorization", f"Bearer {api_key}")
    try:
        response = httpx.get(f"{target_url.rstrip('/')}{base_path}/models", headers=sent,
                             timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)))
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    return [m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str) and m["id"]]


def with_discovered_models(profile: Profile, listed: list[dict] | None, model: str | None) -> Profile:
    """``profile`` whose chat models are the gateway's listed non-embedding models (``model`` first when given)."""
    chat: dict[str, Any] = {}
    if model:
        chat[model] = "unknown"
    for entry in listed or []:
        if not EMBEDDING_ID.search(entry["id"]):
            chat.setdefault(entry["id"], str(entry.get("owned_by") or "unknown"))
    if not chat:
        return profile
    models = dict(profile.raw["models"])
    folded = {name.casefold() for name in chat}
    models.update(
        chat=[{"id": name, "owned_by": owner, "aliases": [], "reasoning": None} for name, owner in chat.items()],
        default_chat=model or next(iter(chat)),
        rejected=[name for name in models.get("rejected", []) if name.casefold() not in folded]
        or ["conformance-unknown-model"],
    )
    return Profile(name=profile.name, raw={**profile.raw, "models": models}, path=profile.path)
