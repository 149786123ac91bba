"""tus 1.0's request headers, read and checked, and its refusals. Sans-IO.

Upload-Length and Upload-Offset are plain non-negative numbers; Upload-Metadata is
comma-separated ``key base64value`` pairs; Upload-Checksum is ``algorithm base64``
for the PATCH's own bytes. Anything malformed is refused with 400 before a byte of
the body is read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from common.protocol.errors import FtError, ProtocolError
from common.protocol.fields import MAX_FILE_SIZE

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
CHECKSUMS: dict[str, str] = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512",
                             "md5": "md5"}
"""tus's algorithm names, and hashlib's."""
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
_NUMBER = re.compile(r"[0-9]{1,16}\Z")
_KEY = re.compile(r"[!-+\--~]+\Z")
"""A metadata key: printable ASCII without space or comma."""


class ChecksumMismatch(FtError):
    """The PATCH's bytes are not those its Upload-Checksum names: none of them are kept."""

    code = "integrity"
    http_status = 460


class OffsetConflict(FtError):
    """The PATCH's Upload-Offset is not what the upload holds."""

    code = "changed"
    http_status = 409


class VersionUnsupported(FtError):
    code = "bad_request"
    http_status = 412


class NotOffsetStream(FtError):
    code = "bad_request"
    http_status = 415


class TooLarge(FtError):
    code = "bad_request"
    http_status = 413


@dataclass(frozen=True)
class Checksum:
    """An Upload-Checksum: the algorithm and the digest the PATCH's bytes must have."""

    algorithm: str
    digest: bytes

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(CHECKSUMS[self.algorithm])


def check_version(value: str | None) -> None:
    """Every tus request but OPTIONS names the version it speaks: 1.0.0."""
    if value is None or value.strip() != VERSION:
        raise VersionUnsupported(f"this server speaks tus {VERSION} (Tus-Resumable)")


def number(value: str | None, header: str) -> int:
    """A header's non-negative number (a file size or offset)."""
    if value is None:
        raise ProtocolError(f"the {header} header is missing")
    text = value.strip()
    if not _NUMBER.match(text) or int(text) > MAX_FILE_SIZE:
        raise ProtocolError(f"the {header} header is not a size in bytes")
    return int(text)


def metadata(value: str | None) -> dict[str, bytes]:
    """Upload-Metadata's pairs (a key alone has an empty value)."""
    pairs: dict[str, bytes] = {}
    if value is None or not value.strip():
        return pairs
    for item in value.split(","):
        key, _, encoded = item.strip().partition(" ")
        if not _KEY.match(key) or key in pairs:
            raise ProtocolError("Upload-Metadata holds a bad or repeated key")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError(f"Upload-Metadata's {key!r} is not base64") from None
    return pairs


def metadata_text(pairs: dict[str, bytes], key: str) -> str | None:
    """A metadata value as UTF-8 text (a file name), None if absent."""
    raw = pairs.get(key)
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"Upload-Metadata's {key!r} is not UTF-8") from None


def announced_sha256(pairs: dict[str, bytes]) -> str | None:
    """The whole file's SHA-256, if the metadata gives it (``sha256``: hex, or 32 bytes)."""
    raw = pairs.get("sha256")
    if raw is None:
        return None
    if len(raw) == 32:
        return raw.hex()
    text = raw.decode("ascii", "replace").strip().lower()
    if re.fullmatch(r"[0-9a-f]{64}", text) is None:
        raise ProtocolError("Upload-Metadata's sha256 is not a SHA-256")
    return text


def checksum(value: str | None) -> Checksum | None:
    """The PATCH's Upload-Checksum, if it has one."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in CHECKSUMS:
        raise ProtocolError(f"Upload-Checksum: {algorithm[:16]!r} is not one of "
                            f"{', '.join(CHECKSUMS)}")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("Upload-Checksum's digest is not base64") from None
    if len(digest) != hashlib.new(CHECKSUMS[algorithm]).digest_size:
        raise ProtocolError(f"Upload-Checksum's {algorithm} digest has the wrong length")
    return Checksum(algorithm, digest)
