"""The replies of a burst of ft's streamed puts, held until the batch's folders are durable.

A client that pipelines streamed puts reads the replies later, so while the next
file is already in our buffer a reply may wait a moment: its upload joins the
session's batch (the store's ``Batch``, store/base.py), and its reply is held here. A burst ends
when no whole request is buffered, when a request other than a streamed put
comes, when it holds MAX_FILES files or is MAX_SECONDS old, or when the
connection ends; the session ends it with ``finish``, which settles the batch
(one fsync per folder, one cache transaction) and only then encodes the replies,
in order, for one send.

No success reply leaves before the fsync that covers its file: if a folder's
fsync fails, every file of the burst published into it is answered with an error
instead (the file is complete and verified, but not known durable: the same
answer a single put gives when its folder fsync fails).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from common.protocol.errors import FtError
from common.protocol.frames import encode_frame
from common.protocol.replies import PutDone, error_reply
from ftserver.ops.outcome import TransferResult
from ftserver.ops.upload import Uploaded
from ftserver.store.base import Batch, Share

MAX_FILES = 64
"""Replies held back at most: bounds what a burst holds open."""
MAX_SECONDS = 0.25
"""A burst older than this ends after its current file: bounds how long its first reply
waits, and how long it holds its folder locks (a folder move waits for them, see treelock.py)."""

Entry = tuple[dict[str, Any], "Uploaded | FtError", float]
"""A streamed put's frame, what became of it, and when it started."""


@dataclass(frozen=True)
class Answered:
    """One streamed put's outcome as the session logs it: a result, or the error it got."""

    frame: dict[str, Any]
    outcome: TransferResult | FtError
    started: float


class ReplyBurst:
    """Held by a session: the batch its streamed puts share, and their replies held back."""

    def __init__(self) -> None:
        self._batch: Batch | None = None
        self._entries: list[Entry] = []
        self._began = 0.0

    def batch(self, storage: Share) -> Batch:
        """The batch this burst's uploads share, begun with the burst's first file (on the
        session's storage as it is then: a login between bursts changes it)."""
        if self._batch is None:
            self._batch = storage.batch()
        return self._batch

    @property
    def pending(self) -> int:
        """Streamed puts whose replies are held."""
        return len(self._entries)

    @property
    def full(self) -> bool:
        """True when the burst must end before it takes another file."""
        return (len(self._entries) >= MAX_FILES
                or (bool(self._entries) and time.monotonic() - self._began > MAX_SECONDS))

    def published(self, frame: dict[str, Any], uploaded: Uploaded, started: float) -> None:
        """A file renamed into place: answered ok once its folder's fsync is done."""
        self._add(frame, uploaded, started)

    def refused(self, frame: dict[str, Any], error: FtError, started: float) -> None:
        """A file answered with ``error`` (its bytes already consumed)."""
        self._add(frame, error, started)

    def _add(self, frame: dict[str, Any], item: Uploaded | FtError, started: float) -> None:
        if not self._entries:
            self._began = started
        self._entries.append((frame, item, started))

    def finish(self) -> tuple[list[Answered], bytes]:
        """End the burst: settle its batch; return what to log and the replies to send, in
        order. A disk failure never raises: it becomes the answers of the files it concerns."""
        batch, self._batch = self._batch, None
        if not self._entries and (batch is None or batch.idle):
            return [], b""
        # Taken at once: should anything below raise, no later finish may answer these
        # files "ok" without the fsync of their folder, which is let go on the way out.
        entries, self._entries = self._entries, []
        failed = batch.settle() if batch is not None else {}
        answers, replies = settle(entries, failed)
        return answers, b"".join(replies)

    def abandon(self) -> None:
        """Let go of what a burst that could not finish still holds (locks, descriptors)."""
        self._entries = []
        if self._batch is not None:
            self._batch.close()
            self._batch = None


def settle(entries: list[Entry], failed: dict[str, FtError]
           ) -> tuple[list[Answered], list[bytes]]:
    """The answers and encoded replies of a burst, in order, given the published files (by
    name) that could not be made durable: those are answered with that error, never ok."""
    answers: list[Answered] = []
    replies: list[bytes] = []
    for frame, item, started in entries:
        outcome: TransferResult | FtError
        if isinstance(item, FtError):
            outcome, reply = item, encode_frame(error_reply(item))
        elif item.place.name in failed:
            outcome = failed[item.place.name]
            reply = encode_frame(error_reply(outcome))
        else:
            outcome = TransferResult(item.place.name, item.size, 0, item.size)
            reply = encode_frame(PutDone(item.size, item.sha256).to_dict())
        replies.append(reply)
        answers.append(Answered(frame, outcome, started))
    return answers, replies
