"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the login exchange and the stored verifier, sans I/O.

The password never crosses the wire: the client proves it knows it with
``ClientKey XOR HMAC(StoredKey, AuthMessage)``, and the server, which keeps only
``StoredKey`` and ``ServerKey`` (PostgreSQL's verifier format
``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``), proves in turn
that it holds the verifier. The messages are RFC 5802's text, carried in JSON
fields by ``auth`` and ``auth_final`` (see docs/protocol.md). User names are
restricted to ``[A-Za-z0-9._-]``, so no SASL name escaping is needed; channel
binding is not used (``n,,``). Passwords are taken as UTF-8 without SASLprep.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from common.protocol.errors import AuthFailed, ProtocolError

MECHANISM = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 100_000
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 10_000_000
SALT_BYTES = 16
NONCE_BYTES = 18
USER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PRINTABLE_NONCE = re.compile(r"^[\x21-\x2b\x2d-\x7e]{8,256}$")
_GS2_HEADER = "n,,"
_CHANNEL_BINDING = base64.b64encode(_GS2_HEADER.encode()).decode()  # "biws"


@dataclass(frozen=True)
class Verifier:
    """What the server stores for a user: never the password."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def to_text(self) -> str:
        return (f"{MECHANISM}${self.iterations}:{_b64(self.salt)}$"
                f"{_b64(self.stored_key)}:{_b64(self.server_key)}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ProtocolError(f"{what} is not valid base64") from None


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def salted_password(password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)


def make_verifier(password: str, *, iterations: int = DEFAULT_ITERATIONS,
                  salt: bytes | None = None) -> Verifier:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = salted_password(password, salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return Verifier(iterations, salt, hashlib.sha256(client_key).digest(),
                    _hmac(salted, b"Server Key"))


def password_matches(verifier: Verifier, password: str) -> bool:
    """Whether ``password`` is the one ``verifier`` was made from (HTTP Basic over TLS,
    where the client sends the password itself): StoredKey = H(HMAC(salted, "Client Key"))."""
    salted = salted_password(password, verifier.salt, verifier.iterations)
    stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    return hmac.compare_digest(stored, verifier.stored_key)


def parse_verifier(text: str) -> Verifier:
    """Parse PostgreSQL's verifier format; ValueError says what is wrong."""
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):"
                         r"([A-Za-z0-9+/=]+)", text.strip())
    if not match:
        raise ValueError("not a SCRAM-SHA-256 verifier (make one with `ftserver passwd --stdin`)")
    iterations = int(match.group(1))
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise ValueError(f"iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}")
    try:
        salt, stored, server = (base64.b64decode(match.group(i), validate=True)
                                for i in (2, 3, 4))
    except binascii.Error:
        raise ValueError("the verifier holds invalid base64") from None
    if len(stored) != 32 or len(server) != 32 or not salt:
        raise ValueError("the verifier's keys must be 32 bytes each and the salt non-empty")
    return Verifier(iterations, salt, stored, server)


def _attributes(message: str, what: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in message.split(","):
        if len(part) < 2 or part[1] != "=" or part[0] in fields:
            raise ProtocolError(f"malformed SCRAM {what}")
        fields[part[0]] = part[2:]
    return fields


def new_nonce() -> str:
    return _b64(secrets.token_bytes(NONCE_BYTES))


# ---------------------------------------------------------------- client side


class ScramClient:
    """One login from the client's side: first(), final(server_first), check(server_final)."""

    def __init__(self, user: str, password: str, nonce: str | None = None) -> None:
        if not USER_NAME.match(user):
            raise AuthFailed("a user name is 1 to 64 letters, digits, '.', '_' or '-'")
        self.user = user
        self.password = password
        self.nonce = nonce or new_nonce()
        self._first_bare = f"n={user},r={self.nonce}"
        self._server_signature = b""

    def first(self) -> str:
        return _GS2_HEADER + self._first_bare

    def final(self, server_first: str) -> str:
        fields = _attributes(server_first, "server-first-message")
        nonce, salt_text, iterations_text = fields.get("r"), fields.get("s"), fields.get("i")
        if nonce is None or salt_text is None or iterations_text is None:
            raise ProtocolError("incomplete SCRAM server-first-message")
        if not nonce.startswith(self.nonce) or len(nonce) <= len(self.nonce):
            raise ProtocolError("the server's SCRAM nonce does not extend ours")
        if not iterations_text.isdigit() or not (
                MIN_ITERATIONS <= int(iterations_text) <= MAX_ITERATIONS):
            raise ProtocolError("the server asked for an unreasonable SCRAM iteration count")
        salted = salted_password(self.password, _unb64(salt_text, "the SCRAM salt"),
                                 int(iterations_text))
        without_proof = f"c={_CHANNEL_BINDING},r={nonce}"
        auth_message = f"{self._first_bare},{server_first},{without_proof}".encode()
        client_key = _hmac(salted, b"Client Key")
        signature = _hmac(hashlib.sha256(client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        self._server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
        return f"{without_proof},p={_b64(proof)}"

    def check(self, server_final: str) -> None:
        """Raise AuthFailed unless the server proved that it holds our verifier."""
        if not self._server_signature:
            raise AuthFailed("the login exchange is incomplete")
        fields = _attributes(server_final, "server-final-message")
        if "v" not in fields:
            raise AuthFailed("the server refused the login: "
                             f"{fields.get('e', 'no reason given')[:80]}")
        signature = _unb64(fields["v"], "the server signature")
        if not hmac.compare_digest(signature, self._server_signature):
            raise AuthFailed("the server could not prove it knows the password: "
                             "it may be an impostor")


# ---------------------------------------------------------------- server side


@dataclass(frozen=True)
class ClientFirst:
    user: str
    nonce: str
    bare: str


def parse_client_first(message: str) -> ClientFirst:
    if not message.startswith(_GS2_HEADER):
        raise ProtocolError("SCRAM channel binding is not supported: start with 'n,,'")
    bare = message[len(_GS2_HEADER):]
    fields = _attributes(bare, "client-first-message")
    user, nonce = fields.get("n"), fields.get("r")
    if user is None or nonce is None or set(fields) != {"n", "r"}:
        raise ProtocolError("SCRAM client-first-message needs exactly n= and r=")
    if not _PRINTABLE_NONCE.match(nonce):
        raise ProtocolError("bad SCRAM nonce")
    return ClientFirst(user, nonce, bare)


class ScramServer:
    """One login attempt on the server's side, given the user's verifier (real or decoy).

    A decoy verifier for an unknown user runs the very same steps and simply
    never matches, so both failures look and take the same.
    """

    def __init__(self, first: ClientFirst, verifier: Verifier, nonce: str | None = None) -> None:
        self.first_bare = first.bare
        self.verifier = verifier
        self.nonce = first.nonce + (nonce or new_nonce())
        self.server_first = (f"r={self.nonce},s={_b64(verifier.salt)},"
                             f"i={verifier.iterations}")

    def finish(self, client_final: str) -> tuple[bool, str]:
        """Check the proof; return (accepted, server-final-message)."""
        head, sep, proof_text = client_final.rpartition(",p=")
        if not sep:
            raise ProtocolError("SCRAM client-final-message has no proof")
        fields = _attributes(head, "client-final-message")
        if fields.get("c") != _CHANNEL_BINDING or fields.get("r") != self.nonce:
            raise ProtocolError("SCRAM client-final-message does not match this exchange")
        proof = _unb64(proof_text, "the SCRAM proof")
        auth_message = f"{self.first_bare},{self.server_first},{head}".encode()
        signature = _hmac(self.verifier.stored_key, auth_message)
        if len(proof) != len(signature):
            return False, "e=invalid-proof"
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        accepted = hmac.compare_digest(hashlib.sha256(client_key).digest(),
                                       self.verifier.stored_key)
        if not accepted:
            return False, "e=invalid-proof"
        return True, f"v={_b64(_hmac(self.verifier.server_key, auth_message))}"
