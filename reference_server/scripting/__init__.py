"""Scripted answers as data (docs/scripts.md): one engine for sandwich mode's upstream scripts and for client
developers' scripted answers (``POST /_mock/scripts``, ``--script FILE``, the ``llm_mock`` fixture).

``rules`` parses and validates, ``nonce`` reads the ``[[mock:<nonce>]]`` channel, ``matching`` decides whether a
rule's conditions hold, ``engine`` keeps rules in the state store and picks the answering rule. Nothing here
imports Flask: the request glue lives in ``reference_server.scripted``.
"""

from reference_server.scripting.engine import ScriptEngine, Selection
from reference_server.scripting.matching import ENDPOINT_ROUTES, RequestFacts, matches
from reference_server.scripting.nonce import find_nonce, marker, prompt_texts
from reference_server.scripting.rules import ROUTES, Rule, RuleError, ScriptedResponse, parse_rules

__all__ = ["ENDPOINT_ROUTES", "ROUTES", "RequestFacts", "Rule", "RuleError", "ScriptEngine", "ScriptedResponse",
           "Selection", "find_nonce", "marker", "matches", "parse_rules", "prompt_texts"]
