"""JSON Schema validators for the components of spec/openapi.yaml (Draft 2020-12, refs resolved in place)."""

from __future__ import annotations

import functools
from typing import Any

import referencing
from jsonschema.validators import Draft202012Validator
from referencing.jsonschema import DRAFT202012

from gateway_spec import load_openapi

SPEC_URI = "urn:llm-gateway-conformance:openapi"
_SCHEMAS = "#/components/schemas/"


@functools.lru_cache(maxsize=1)
def _registry() -> referencing.Registry:
    resource = DRAFT202012.create_resource(load_openapi())
    return referencing.Registry().with_resource(SPEC_URI, resource)


@functools.cache
def schema_validator(name: str) -> Draft202012Validator:
    """A validator for ``components.schemas.<name>``."""
    if name not in load_openapi()["components"]["schemas"]:
        raise KeyError(f"components.schemas has no {name}")
    return Draft202012Validator({"$ref": f"{SPEC_URI}{_SCHEMAS}{name}"}, registry=_registry())


def extension_validator(path: str, media_type: str, extension: str) -> Draft202012Validator:
    """The validator a 200 response names in a per-item vendor extension (``x-sse-event-schema``, ...).

    ``path`` is ``"METHOD /route"`` as written in the spec, e.g. ``"POST /v1/chat/completions"``.
    """
    method, route = path.split(" ", 1)
    content = load_openapi()["paths"][route][method.lower()]["responses"]["200"]["content"][media_type]
    ref = content[extension]["$ref"]
    if not ref.startswith(_SCHEMAS):
        raise ValueError(f"{extension} of {path} must point at components.schemas, got {ref}")
    return schema_validator(ref[len(_SCHEMAS):])


def schema_errors(name: str, instance: Any, limit: int = 20) -> list[str]:
    """Up to ``limit`` violations of ``components.schemas.<name>`` by ``instance``, as 'path: message'."""
    out = []
    for err in schema_validator(name).iter_errors(instance):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"{where}: {err.message[:300]}")
        if len(out) >= limit:
            break
    return out
