"""ftclient: a quiet Python API for ft servers (``Client``), with the ``ftclient`` CLI on top.

    from ftclient import Client
    with Client("fileserver.local") as client:
        client.put("report.pdf", "reports/")
        client.get("reports/report.pdf", "copy.pdf")
        for entry in client.list("reports"):
            print(entry.name, entry.size)

The API prints nothing; progress goes to an optional callback. Errors are the
classes of ``common.protocol.errors`` (all derive from ``FtError``).
"""

from common.protocol.errors import (
    AlreadyExists,
    AuthFailed,
    Busy,
    ConnectionLost,
    FtError,
    IntegrityError,
    Locked,
    NoSpace,
    NotFound,
    PermissionDenied,
    ProtocolError,
    SourceChanged,
    Untrusted,
)
from common.protocol.replies import EntryInfo
from ftclient.client import Client
from ftclient.results import GetResult, Progress, PutResult
from ftclient.retry import RetryNote

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists",
    "AuthFailed",
    "Busy",
    "Client",
    "ConnectionLost",
    "EntryInfo",
    "FtError",
    "GetResult",
    "IntegrityError",
    "Locked",
    "NoSpace",
    "NotFound",
    "PermissionDenied",
    "Progress",
    "ProtocolError",
    "PutResult",
    "RetryNote",
    "SourceChanged",
    "Untrusted",
]
