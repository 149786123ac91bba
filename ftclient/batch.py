"""The files of one ``put_many`` or ``get_many`` over its attempts: which are answered."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from common.io.channel import Channel
from common.io.ratelimit import Throttle
from common.protocol.errors import ConnectionLost, FtError, Timeout
from ftclient.pipeline import BytesCallback, PipedFile, PipedResult
from ftclient.retry import note_gave_up, reason_to_retry


class PipelinedBatch:
    """The files of one ``put_many`` or ``get_many`` over its attempts: which are answered.

    Each attempt sends only the files not answered yet. A file answered with an
    error of the moment (its name still locked by our own cut session, the server
    shutting down) counts as not answered: the next attempt sends it again.
    """

    def __init__(self, files: Sequence[PipedFile], moved: BytesCallback | None) -> None:
        self.files = list(files)
        self.moved = moved
        self.answered: list[PipedResult | None] = [None] * len(self.files)
        self.unanswered = list(range(len(self.files)))
        self.attempts = 0
        self.after_cut = False
        self.transient: dict[int, FtError] = {}
        """Errors of the moment the last attempt was answered with, by file position."""

    def attempt(self, run: Callable[..., None], connect: Callable[[], Channel],
                timeout: float, throttle: Throttle) -> None:
        """Send the files not answered yet over a connection; raise what ended it early."""
        self.attempts += 1
        todo, self.transient = self.unanswered, {}

        def answered(position: int, result: PipedResult) -> None:
            index = todo[position]
            if result.error is not None and reason_to_retry(result.error, self.after_cut):
                self.transient[index] = result.error
                return
            self.answered[index] = result
            if self.moved is not None:
                self.moved(result.remote, result.size)

        try:
            run(connect(), [self.files[index] for index in todo], timeout, answered, throttle)
        except (ConnectionLost, Timeout):
            self.after_cut = True
            raise
        finally:
            self.unanswered = [index for index in todo if self.answered[index] is None]
        if self.transient:
            raise next(iter(self.transient.values()))

    def left(self) -> str:
        """The files still to send, for a retry note: one name, or how many."""
        if len(self.unanswered) == 1:
            return self.files[self.unanswered[0]].remote
        return f"{len(self.unanswered)} files"

    def give_up(self, error: FtError) -> None:
        """Fail every file not answered with ``error`` (or the error it was answered with)."""
        for index in self.unanswered:
            own = self.transient.get(index, error)
            if own is not error:
                note_gave_up(own, self.attempts - 1)
            item = self.files[index]
            self.answered[index] = PipedResult(item.local, item.remote, 0, None, own)
        self.unanswered = []

    def results(self) -> list[PipedResult]:
        results = [result for result in self.answered if result is not None]
        assert len(results) == len(self.files), "a file of the batch was never answered"
        return results
