"""SCRAM-SHA-256 against RFC 7677's worked example, verifiers, and refusals of bad exchanges."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.io.tls import normalize_fingerprint
from common.protocol.errors import AuthFailed, ProtocolError
from common.protocol.scram import (
    ScramClient,
    ScramServer,
    Verifier,
    make_verifier,
    parse_client_first,
    parse_verifier,
    salted_password,
)

# RFC 7677, section 3.
RFC_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_client_and_server_reproduce_rfc_7677() -> None:
    verifier = make_verifier("pencil", iterations=4096, salt=RFC_SALT)
    client = ScramClient("user", "pencil", nonce=RFC_CLIENT_NONCE)
    assert client.first() == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    server = ScramServer(parse_client_first(client.first()), verifier, nonce=RFC_SERVER_NONCE)
    assert server.server_first == ("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                                   "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    final = client.final(server.server_first)
    assert final == RFC_CLIENT_FINAL
    assert server.finish(final) == (True, RFC_SERVER_FINAL)
    client.check(RFC_SERVER_FINAL)


def test_verifier_round_trips_in_postgres_format_and_holds_no_password() -> None:
    verifier = make_verifier("correct horse", iterations=4096)
    text = verifier.to_text()
    assert text.startswith("SCRAM-SHA-256$4096:")
    assert "correct horse" not in text
    assert parse_verifier(text) == verifier
    assert make_verifier("correct horse", iterations=4096).salt != verifier.salt  # salted
    assert salted_password("x", b"salt", 4096) != salted_password("x", b"tlas", 4096)


@pytest.mark.parametrize("text", [
    "", "md5abcdef", "SCRAM-SHA-256$10:c2FsdA==$" + "A" * 44 + ":" + "A" * 44,
    "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:c2hvcnQ=", "SCRAM-SHA-256$4096:!!$a:b",
])
def test_bad_verifiers_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_verifier(text)


def exchange(password: str, verifier: Verifier) -> tuple[bool, str]:
    client = ScramClient("alice", password)
    server = ScramServer(parse_client_first(client.first()), verifier)
    return server.finish(client.final(server.server_first))


def test_wrong_password_fails_and_right_one_passes() -> None:
    verifier = make_verifier("right", iterations=4096)
    assert exchange("right", verifier)[0] is True
    assert exchange("wrong", verifier) == (False, "e=invalid-proof")


def test_client_refuses_a_server_that_cannot_prove_the_verifier() -> None:
    real = make_verifier("pw", iterations=4096)
    impostor = Verifier(real.iterations, real.salt, real.stored_key, b"\0" * 32)
    client = ScramClient("alice", "pw")
    server = ScramServer(parse_client_first(client.first()), impostor)
    accepted, server_final = server.finish(client.final(server.server_first))
    assert accepted  # it did learn the StoredKey, but not the ServerKey
    with pytest.raises(AuthFailed):
        client.check(server_final)


@pytest.mark.parametrize("message", [
    "y,,n=alice,r=abcdefgh", "n,,n=alice", "n,,r=abcdefgh", "n,,n=alice,r=abc",
    "n,,n=alice,r=abcdefgh,x=1", "garbage",
])
def test_malformed_client_first_messages_are_protocol_errors(message: str) -> None:
    with pytest.raises(ProtocolError):
        parse_client_first(message)


def test_replayed_or_tampered_final_messages_are_refused() -> None:
    verifier = make_verifier("pw", iterations=4096)
    client = ScramClient("alice", "pw")
    server = ScramServer(parse_client_first(client.first()), verifier)
    final = client.final(server.server_first)
    other = ScramServer(parse_client_first(client.first()), verifier)  # a fresh server nonce
    with pytest.raises(ProtocolError):
        other.finish(final)  # replay against another exchange
    with pytest.raises(ProtocolError):
        server.finish(final.replace("c=biws", "c=eSws"))
    assert server.finish(final[:-4] + "AAA=")[0] is False


def test_client_refuses_a_nonce_that_does_not_extend_its_own() -> None:
    client = ScramClient("alice", "pw", nonce="abcdefghijkl")
    with pytest.raises(ProtocolError):
        client.final("r=zzzzzzzzzzzzzz,s=c2FsdA==,i=4096")
    with pytest.raises(ProtocolError):
        client.final("r=abcdefghijklXYZ,s=c2FsdA==,i=1")  # a cheap-to-crack count


def test_user_names_are_restricted() -> None:
    for name in ("", "a,b", "a=b", "x" * 65, "ünï"):
        with pytest.raises(AuthFailed):
            ScramClient(name, "pw")


def test_fingerprints_are_normalized() -> None:
    hexdigits = "ab" * 32
    assert normalize_fingerprint(hexdigits.upper()) == hexdigits
    assert normalize_fingerprint(":".join(["AB"] * 32)) == hexdigits
    assert normalize_fingerprint("sha256:" + hexdigits) == hexdigits
    assert normalize_fingerprint("ab" * 31) is None
    assert normalize_fingerprint("zz" * 32) is None


# ---------------------------------------------------------------- fuzz: only our own errors

BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIXED_VERIFIER = make_verifier("pw", iterations=4096, salt=b"fixed-salt")
scram_text = st.text(alphabet=st.sampled_from("nrcpvsie=,+/abAB01-_\x00é"), max_size=120) | \
    st.text(max_size=60)


@BOUNDED
@given(scram_text)
def test_any_client_first_message_is_parsed_or_refused(message: str) -> None:
    try:
        first = parse_client_first(message)
    except ProtocolError:
        return
    ScramServer(first, FIXED_VERIFIER)  # whatever parsed can start an exchange


@BOUNDED
@given(scram_text)
def test_any_client_final_message_is_judged_or_refused(message: str) -> None:
    server = ScramServer(parse_client_first("n,,n=alice,r=abcdefghij"), FIXED_VERIFIER)
    try:
        accepted, _ = server.finish(message)
    except ProtocolError:
        return
    assert accepted is False


@BOUNDED
@given(scram_text, scram_text)
def test_any_server_message_is_handled_or_refused(server_first: str, server_final: str) -> None:
    client = ScramClient("alice", "pw", nonce="abcdefghij")
    with contextlib.suppress(ProtocolError):
        client.final(server_first)
    with pytest.raises((ProtocolError, AuthFailed)):
        client.check(server_final)
