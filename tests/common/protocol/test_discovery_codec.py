"""The discovery datagrams (common/protocol/discovery.py), in memory: sizes, round trips,
hostile bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.protocol.discovery import (
    MAX_DATAGRAM,
    QUERY_SIZE,
    Announcement,
    DiscoveryError,
    encode_query,
    encode_reply,
    parse_query,
    parse_reply,
)

FINGERPRINT = "ab" * 32


def test_query_is_padded_to_its_size_and_parses() -> None:
    query = encode_query()
    assert len(query) == QUERY_SIZE
    assert parse_query(query) == 1


def test_newer_query_versions_are_still_answered() -> None:
    assert parse_query(encode_query(version=7)) == 7


@pytest.mark.parametrize("announcement", [
    Announcement("Front office", None, 9021, False, None),
    Announcement("Étage 2 — 📁", "192.168.1.10", 1, True, FINGERPRINT),
])
def test_reply_round_trip(announcement: Announcement) -> None:
    assert parse_reply(encode_reply(announcement, QUERY_SIZE)) == announcement


@given(st.text(max_size=600))
@settings(max_examples=60, deadline=None)
def test_reply_always_fits_the_query(name: str) -> None:
    reply = encode_reply(Announcement(name, "10.0.0.5", 9021, True, FINGERPRINT), QUERY_SIZE)
    assert len(reply) <= QUERY_SIZE
    assert name.startswith(parse_reply(reply).name)


def test_reply_that_cannot_fit_is_refused() -> None:
    with pytest.raises(DiscoveryError):
        encode_reply(Announcement("x", None, 9021, False, None), 40)


@pytest.mark.parametrize("data", [
    b"", b"{}", b"\xff" * QUERY_SIZE, b"[" * QUERY_SIZE, b"1" * QUERY_SIZE,
    json.dumps({"op": "ft-discover", "version": 1}).encode(),  # too short to answer
    encode_query().replace(b'"version":1', b'"version":0'),
    encode_query().replace(b'"version":1', b'"version":1.0'),
    encode_query().replace(b'"version":1', b'"version":"1"'),
    encode_query().replace(b'"op":"ft-discover"', b'"op":"ft-discoveR"'),
    encode_query() + b" " * (MAX_DATAGRAM - QUERY_SIZE + 1),
])
def test_bad_queries(data: bytes) -> None:
    with pytest.raises(DiscoveryError):
        parse_query(data)


GOOD = {"op": "ft-server", "version": 1, "name": "ft", "host": None, "port": 9021,
        "tls": False, "fingerprint": None}


@pytest.mark.parametrize("change", [
    {"op": "ft-discover"}, {"version": 0}, {"version": True}, {"name": 5},
    {"name": "x" * 201}, {"host": "a b"}, {"host": ""}, {"host": 7}, {"port": 0},
    {"port": 65536}, {"port": True}, {"port": "9021"}, {"tls": 1}, {"tls": None},
    {"fingerprint": "not hex!"}, {"fingerprint": 12},
])
def test_bad_replies(change: dict[str, object]) -> None:
    with pytest.raises(DiscoveryError):
        parse_reply(json.dumps({**GOOD, **change}).encode())


@given(st.binary(max_size=MAX_DATAGRAM + 8))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_raise_only_discovery_error(data: bytes) -> None:
    for parse in (parse_query, parse_reply):
        try:
            parse(data)
        except DiscoveryError:
            pass
