"""The sans-IO halves of HTTP: targets to names, ranges and conditionals, as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.protocol.errors import BadPath
from ftserver.http.ranges import Unsatisfiable, choose_span, http_date, not_modified
from ftserver.http.target import parse_target, url_path

ETAG = '"abc-1"'


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12),
       st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)))
def test_a_chosen_span_lies_inside_the_file(size: int, first: int, last: int | None) -> None:
    header = f"bytes={first}-{'' if last is None else last}"
    try:
        span = choose_span(header, None, size, ETAG, 0.0)
    except Unsatisfiable:
        assert first >= size
        return
    assert 0 <= span.start and span.start + span.length <= size
    if span.partial:
        assert span.start == first


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**9))
def test_a_suffix_range_is_the_files_last_bytes(size: int, suffix: int) -> None:
    span = choose_span(f"bytes=-{suffix}", None, size, ETAG, 0.0)
    assert span.start + span.length == size and span.length == min(size, suffix)


def test_several_ranges_or_a_stale_if_range_get_the_whole_file() -> None:
    assert not choose_span("bytes=0-1,5-6", None, 100, ETAG, 0.0).partial
    assert not choose_span("bytes=10-", '"other"', 100, ETAG, 0.0).partial
    assert not choose_span("bytes=10-", f"W/{ETAG}", 100, ETAG, 0.0).partial
    assert choose_span("bytes=10-", ETAG, 100, ETAG, 0.0).partial
    assert choose_span("bytes=10-", http_date(1_700_000_000), 100, ETAG, 1_700_000_000.5).partial
    assert not choose_span("bytes=10-", http_date(1_600_000_000), 100, ETAG,
                           1_700_000_000.0).partial


def test_conditionals() -> None:
    assert not_modified(ETAG, None, ETAG, 0.0)
    assert not_modified(f'"x", W/{ETAG}', None, ETAG, 0.0)
    assert not not_modified('"x"', http_date(2_000_000_000), ETAG, 1.0)  # INM wins
    assert not_modified(None, http_date(1_000), ETAG, 999.9)
    assert not not_modified(None, http_date(1_000), ETAG, 1_001.0)
    assert not not_modified(None, "not a date", ETAG, 0.0)


@given(st.lists(st.text(min_size=1, max_size=20).filter(
    lambda t: t not in (".", "..") and "/" not in t and "\\" not in t
    and not t.startswith(".ft-") and not any(ord(c) < 32 or ord(c) == 127 for c in t)
    and not (len(t) >= 2 and t[1] == ":" and t[0].isascii() and t[0].isalpha())
    and "%" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
    min_size=1, max_size=4))
def test_a_name_goes_to_its_url_and_back_unchanged(parts: list[str]) -> None:
    name = "/".join(parts)
    target = parse_target(url_path(name).encode("ascii"))
    assert target.name == name and not target.folder
    assert parse_target(url_path(name, folder=True).encode("ascii")).folder


@pytest.mark.parametrize("raw", [b"/a/../b", b"/%2e%2e", b"/a%2fb", b"/a%5cb", b"/%00",
                                 b"/a//b", b"/%252e%252e", b"/%252fetc", b"*",
                                 b"http://x/a", b"/.ft-partials/x", b"/%c3"])
def test_bad_targets_are_refused(raw: bytes) -> None:
    with pytest.raises(BadPath):
        parse_target(raw)
