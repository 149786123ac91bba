"""WebDAV's ``If`` header (RFC 4918, section 10.4): parsed and evaluated, sans-IO.

The header is lists of conditions, each list either for the request's own resource
or tagged with another's URL: a lock token (``<opaquelocktoken:...>``) or an entity
tag (``["..."]``), either maybe negated with ``Not``. The header holds when any
list holds, and a list when all its conditions do. Every token in it counts as
submitted: a writer holding it may write under that lock (writelocks.py).
Windows sends ``Lock-Token`` without its angle brackets; ``bare_token`` takes both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from common.protocol.errors import ProtocolError

_TOKEN = re.compile(r"\s*(Not\s*)?(?:<([^>]*)>|\[([^\]]*)\])", re.IGNORECASE)
MAX_IF = 16 * 1024


class BadIf(ProtocolError):
    http_status = 400


@dataclass(frozen=True)
class Condition:
    negated: bool
    token: str | None
    etag: str | None


@dataclass(frozen=True)
class ConditionList:
    resource: str | None
    """The tagged resource's URL (absolute or a path), None for the request's own."""
    conditions: tuple[Condition, ...]


def parse_if(header: str) -> list[ConditionList]:
    if len(header) > MAX_IF:
        raise BadIf("the If header is too long")
    lists: list[ConditionList] = []
    resource: str | None = None
    at = 0
    text = header.strip()
    while at < len(text):
        if text[at].isspace():
            at += 1
            continue
        if text[at] == "<":
            end = text.find(">", at)
            if end < 0:
                raise BadIf("the If header's resource tag is not closed")
            resource = text[at + 1:end]
            at = end + 1
            continue
        if text[at] != "(":
            raise BadIf("the If header is not lists of conditions in parentheses")
        end = text.find(")", at)
        if end < 0:
            raise BadIf("a list of the If header is not closed")
        conditions = _conditions(text[at + 1:end])
        lists.append(ConditionList(resource, conditions))
        at = end + 1
    if not lists:
        raise BadIf("the If header holds no condition")
    return lists


def _conditions(inner: str) -> tuple[Condition, ...]:
    found = []
    at = 0
    while at < len(inner):
        if inner[at:].strip() == "":
            break
        match = _TOKEN.match(inner, at)
        if match is None:
            raise BadIf("a condition of the If header is neither a <token> nor an [etag]")
        negated = bool(match.group(1))
        if match.group(2) is not None:
            found.append(Condition(negated, match.group(2).strip(), None))
        else:
            found.append(Condition(negated, None, match.group(3).strip()))
        at = match.end()
    if not found:
        raise BadIf("a list of the If header is empty")
    return tuple(found)


def submitted_tokens(lists: list[ConditionList]) -> frozenset[str]:
    return frozenset(condition.token for each in lists for condition in each.conditions
                     if condition.token is not None and not condition.negated)


def holds(lists: list[ConditionList], token_fits: Callable[[str | None, str], bool],
          etag_of: Callable[[str | None], str | None]) -> bool:
    """Whether the header holds: ``token_fits(resource, token)`` tells whether a token
    is a live lock on the resource, ``etag_of(resource)`` its entity tag now."""
    for each in lists:
        if all(_condition_holds(each.resource, condition, token_fits, etag_of)
               for condition in each.conditions):
            return True
    return False


def _condition_holds(resource: str | None, condition: Condition,
                     token_fits: Callable[[str | None, str], bool],
                     etag_of: Callable[[str | None], str | None]) -> bool:
    if condition.token is not None:
        result = token_fits(resource, condition.token)
    else:
        current = etag_of(resource)
        result = current is not None and _weakless(current) == _weakless(condition.etag or "")
    return result != condition.negated


def _weakless(etag: str) -> str:
    return etag[2:] if etag.startswith("W/") else etag


def bare_token(header: str) -> str:
    """A Lock-Token header's token, with or without its angle brackets (Windows)."""
    value = header.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return value
