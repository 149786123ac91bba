"""The conversation of ft's protocol as one table: which message may come next, from whom.

This is the one place that says in what order a client and a server speak (the
prose of docs/protocol.md, as data). Both ends feed a ``Conversation`` every
message they send or receive, in the order they see them, and it raises on one
that may not come now. Like h11's ``_state.py`` it is pure data and pure
functions: no sockets, clocks or files, and no message is kept. It judges no
field except the few numbers that tie one message to another: how many raw bytes
a frame announces, and which offset a ``put_data`` may take after ``put_ready``.
Fields themselves are requests.py's and replies.py's to check.

Two sides speak, so there are two tables:

* CLIENT_TABLE: the client's state, and for each request that may come in it,
  the next state and the answer the server then owes. A resumable ``put`` and an
  ``auth`` make the client wait (AWAITING) for the answer its next frame depends
  on; every other request leaves it free to send more before it reads (streamed
  puts, pipelined gets).
* ANSWER_TABLE: the answers the server owes, oldest first. Each reply must fit
  the oldest: ANSWER_TABLE says what is owed after it, and which state a waiting
  client moves to. A server that holds replies back (a burst of streamed puts)
  owes several; their order is the requests' order.

Raw bytes are counted against what the frame before them announced.

A message that may not come now is refused: ProtocolError when it is the peer's
(or FrameError before ``hello``), InternalError when it is our own. What a refusal
costs depends on the state (REFUSALS): between requests the refused request is
answered with an error and the connection goes on; where a put's raw bytes may be
on their way the stream is out of step (BROKEN) and the connection must close. An
end may send one last error frame and close at any point (a bad frame, a
timeout, a broken stream, a shutdown): the conversation ends there, and this
table does not follow it.

Everything here is an int, and a step is a list index and a dict lookup: a
small file costs each end four steps.
"""

from __future__ import annotations

from collections import deque
from typing import Final, NoReturn

from common.protocol.errors import FrameError, FtError, InternalError, ProtocolError
from common.protocol.requests import (
    AuthFinal,
    AuthStart,
    GetRequest,
    Hello,
    ListDir,
    MakeDir,
    Move,
    PutData,
    PutEnd,
    PutRequest,
    Remove,
    Request,
    SetMtime,
    Stat,
    Walk,
)

# ---------------------------------------------------------------- who speaks

CLIENT: Final = 0
SERVER: Final = 1

# ---------------------------------------------------------------- messages

# Requests: the client's frames (a streamed put is a put with "stream": true).
HELLO, AUTH, AUTH_FINAL, LIST, WALK, STAT, MKDIR, MOVE, REMOVE, SET_MTIME = range(10)
PUT, STREAM_PUT, PUT_DATA, PUT_END, GET = range(10, 15)
# Replies: the server's frames. OK is any success reply without a kind of its own
# (hello's, stat's, a login step's, a file operation's, a listing's last batch).
OK, BATCH, PUT_READY, PUT_DONE, GET_READY, GET_END, ERROR = range(15, 22)

MESSAGE_NAMES: Final = (
    "'hello'", "'auth'", "'auth_final'", "'list'", "'walk'", "'stat'", "'mkdir'", "'move'",
    "'remove'", "'set_mtime'", "'put'", "a streamed 'put'", "'put_data'", "'put_end'",
    "'get'",
    "an ok reply", "a batch (done: false)", "put_ready", "put_done", "get_ready", "get_end",
    "an error reply",
)
"""For messages: what each message is called."""

# ---------------------------------------------------------------- the client's states

GREETING, AWAITING, IDLE, PUT_DATA_NEXT, PUT_RAW, PUT_END_NEXT = range(6)
STREAM_RAW, STREAM_END_NEXT, AUTH_FINAL_NEXT, BROKEN = range(6, 10)

STATE_NAMES: Final = (
    "greeting", "awaiting an answer", "idle", "put_data next", "a put's raw bytes",
    "put_end next", "a streamed put's raw bytes", "a streamed put's put_end next",
    "auth_final next", "broken",
)

# ---------------------------------------------------------------- what the server owes

NOTHING = -1
A_HELLO, A_ONE, A_REFUSAL, A_BATCHES, A_PUT_READY, A_PUT_DONE = range(6)
A_GET, A_GET_RAW, A_GET_END, A_AUTH = range(6, 10)

ANSWER_NAMES: Final = (
    "hello's reply", "one reply", "an error reply", "a listing's batches", "put_ready",
    "put_done", "get_ready", "a get's raw bytes", "get_end", "a login challenge",
)

KEEP = -1
"""In ANSWER_TABLE: the reply leaves the client's state as it is."""

# ---------------------------------------------------------------- the tables

CLIENT_TABLE: Final[dict[int, dict[int, tuple[int, int]]]] = {
    GREETING: {HELLO: (AWAITING, A_HELLO)},
    AWAITING: {},
    IDLE: {
        AUTH: (AWAITING, A_AUTH),
        LIST: (IDLE, A_BATCHES), WALK: (IDLE, A_BATCHES),
        STAT: (IDLE, A_ONE), MKDIR: (IDLE, A_ONE), MOVE: (IDLE, A_ONE),
        REMOVE: (IDLE, A_ONE), SET_MTIME: (IDLE, A_ONE),
        PUT: (AWAITING, A_PUT_READY),
        STREAM_PUT: (STREAM_RAW, NOTHING),  # owed once its put_end is in
        GET: (IDLE, A_GET),
    },
    PUT_DATA_NEXT: {PUT_DATA: (PUT_RAW, NOTHING)},
    PUT_RAW: {},
    PUT_END_NEXT: {PUT_END: (IDLE, A_PUT_DONE)},
    STREAM_RAW: {},
    STREAM_END_NEXT: {PUT_END: (IDLE, A_PUT_DONE)},
    AUTH_FINAL_NEXT: {AUTH_FINAL: (IDLE, A_ONE)},
    BROKEN: {},
}
"""Client state → request that may come → (next state, the answer it is owed or NOTHING)."""

RAW_DONE: Final[dict[int, int]] = {PUT_RAW: PUT_END_NEXT, STREAM_RAW: STREAM_END_NEXT}
"""A client state of raw bytes → the state once the last announced byte is in."""

ANSWER_TABLE: Final[dict[int, dict[int, tuple[int, int]]]] = {
    A_HELLO: {OK: (NOTHING, IDLE)},
    A_ONE: {OK: (NOTHING, KEEP), ERROR: (NOTHING, KEEP)},
    A_REFUSAL: {ERROR: (NOTHING, KEEP)},
    A_BATCHES: {BATCH: (A_BATCHES, KEEP), OK: (NOTHING, KEEP), ERROR: (NOTHING, KEEP)},
    A_PUT_READY: {PUT_READY: (NOTHING, PUT_DATA_NEXT), ERROR: (NOTHING, IDLE)},
    A_PUT_DONE: {PUT_DONE: (NOTHING, KEEP), ERROR: (NOTHING, KEEP)},
    A_GET: {GET_READY: (A_GET_RAW, KEEP), ERROR: (NOTHING, KEEP)},
    A_GET_RAW: {},
    A_GET_END: {GET_END: (NOTHING, KEEP), ERROR: (NOTHING, KEEP)},
    A_AUTH: {OK: (NOTHING, AUTH_FINAL_NEXT), ERROR: (NOTHING, IDLE)},
}
"""Oldest owed answer → reply that may come → (what is owed in its place or NOTHING, the
client state it lets a waiting client move to, or KEEP)."""

REFUSALS: Final[dict[int, tuple[int, int, type[ProtocolError], str]]] = {
    GREETING: (BROKEN, NOTHING, FrameError, "the first request must be 'hello'"),
    AWAITING: (BROKEN, NOTHING, ProtocolError, "{got} came before the answer it depends on"),
    IDLE: (IDLE, A_REFUSAL, ProtocolError, "{got} is not valid here"),
    PUT_DATA_NEXT: (BROKEN, NOTHING, ProtocolError, "expected 'put_data', got {got}"),
    PUT_RAW: (BROKEN, NOTHING, ProtocolError, "{got} came where raw bytes were due"),
    PUT_END_NEXT: (IDLE, A_REFUSAL, ProtocolError, "expected 'put_end', got {got}"),
    STREAM_RAW: (BROKEN, NOTHING, ProtocolError, "{got} came where raw bytes were due"),
    STREAM_END_NEXT: (BROKEN, NOTHING, ProtocolError,
                      "expected 'put_end' after a streamed put, got {got}"),
    AUTH_FINAL_NEXT: (IDLE, A_REFUSAL, ProtocolError, "expected 'auth_final', got {got}"),
    BROKEN: (BROKEN, NOTHING, ProtocolError, "{got} came after the stream fell out of step"),
}
"""Client state → what refusing a request there costs: (next state, the answer then owed
or NOTHING, the error, its message). BROKEN: the connection must close; A_REFUSAL: the
refused request is answered with the error, and the connection goes on."""

_CLIENT: Final = [CLIENT_TABLE[state] for state in range(len(STATE_NAMES))]
_ANSWERS: Final = [ANSWER_TABLE[answer] for answer in range(len(ANSWER_NAMES))]

_EVENT_OF: Final[dict[type, int]] = {
    Hello: HELLO, AuthStart: AUTH, AuthFinal: AUTH_FINAL, ListDir: LIST, Walk: WALK,
    Stat: STAT, MakeDir: MKDIR, Move: MOVE, Remove: REMOVE, SetMtime: SET_MTIME,
    PutRequest: PUT, PutData: PUT_DATA, PutEnd: PUT_END, GetRequest: GET,
}


class Conversation:
    """One connection's conversation as one end sees it (``local``: CLIENT or SERVER).

    Feed it each message in the order this end sent or received it: ``request`` and
    ``client_raw`` for what the client says, ``reply`` and ``server_raw`` for the
    server. A message out of order raises (see the module's docstring), after the
    state has taken the refusal's step.
    """

    __slots__ = ("_local", "_state", "_owed", "_raw_left", "_size", "_held", "_reply_raw_left")

    def __init__(self, local: int, greeted: bool = False) -> None:
        """``greeted``: start after ``hello`` and its reply (a client's transfers start there)."""
        self._local = local
        self._state = IDLE if greeted else GREETING
        self._owed: deque[int] = deque()
        self._raw_left = 0
        """Raw bytes the client still owes for its put."""
        self._size = 0
        """The size the resumable put being spoken of announced."""
        self._held = 0
        """The offset its put_ready offered."""
        self._reply_raw_left = 0
        """Raw bytes the server still owes for the oldest get."""

    # ------------------------------------------------------------ where it stands

    @property
    def state(self) -> int:
        """The client's state (GREETING ... BROKEN)."""
        return self._state

    @property
    def owed(self) -> tuple[int, ...]:
        """The answers the server owes, oldest first (A_HELLO ... A_AUTH)."""
        return tuple(self._owed)

    @property
    def settled(self) -> bool:
        """True between requests with nothing owed: the client may read nothing now."""
        return self._state == IDLE and not self._owed

    # ------------------------------------------------------------ the client's messages

    def request(self, event: int, number: int = 0) -> None:
        """The client sent a request frame (HELLO ... GET). ``number``: for PUT and
        STREAM_PUT the size it announces, for PUT_DATA its offset."""
        step = _CLIENT[self._state].get(event)
        if step is None:
            self._refuse(event)
        state, owed = step
        if event == STREAM_PUT:
            if number == 0:
                state = STREAM_END_NEXT
            self._raw_left = number
        elif event == PUT:
            self._size = number
        elif event == PUT_DATA:
            if (number != 0 and number != self._held) or not 0 <= number <= self._size:
                self._state = BROKEN
                self._fault(CLIENT, f"offset must be 0 or {self._held}")
            self._raw_left = self._size - number
            if self._raw_left == 0:
                state = PUT_END_NEXT
        self._state = state
        if owed != NOTHING:
            self._owed.append(owed)

    def receive(self, request: Request) -> None:
        """``request`` for a parsed request (as a server reads them)."""
        event = _EVENT_OF[type(request)]
        if event == PUT:
            assert isinstance(request, PutRequest)
            self.request(STREAM_PUT if request.stream else PUT, request.size)
        elif event == PUT_DATA:
            assert isinstance(request, PutData)
            self.request(PUT_DATA, request.offset)
        else:
            self.request(event)

    def client_raw(self, count: int) -> None:
        """``count`` raw bytes of the client's put went by (none: nothing happens)."""
        if not count:
            return
        left = self._raw_left - count
        if self._state not in RAW_DONE or left < 0 or count < 0:
            due = self._raw_left if self._state in RAW_DONE else 0
            self._state = BROKEN
            self._fault(CLIENT, f"{count} raw bytes came from the client where {due} were due")
        self._raw_left = left
        if left == 0:
            self._state = RAW_DONE[self._state]

    def refused(self) -> None:
        """The next request was refused for what it holds (a bad field, not allowed): it
        costs what a request out of order costs in this state (REFUSALS), without raising."""
        self._state, owed, _, _ = REFUSALS[self._state]
        if owed != NOTHING:
            self._owed.append(owed)

    def broken(self) -> None:
        """The stream is out of step (a streamed put whose size cannot be read): the
        client's side ends here; answers still owed may still be sent."""
        self._state = BROKEN

    # ------------------------------------------------------------ the server's messages

    def reply(self, event: int, raw: int = 0) -> None:
        """The server sent a reply frame (OK ... ERROR). ``raw``: for GET_READY, the raw
        bytes that follow it; for PUT_READY, the offset it offers."""
        owed = self._owed
        if not owed:
            self._fault(SERVER, f"{MESSAGE_NAMES[event]} came when no answer was owed")
        step = _ANSWERS[owed[0]].get(event)
        if step is None:
            self._fault(SERVER, f"{MESSAGE_NAMES[event]} came where "
                        f"{ANSWER_NAMES[owed[0]]} was due")
        after, release = step
        if event == GET_READY:
            if raw < 0:
                self._fault(SERVER, f"get_ready announced {raw} raw bytes")
            self._reply_raw_left = raw
            if raw == 0:
                after = A_GET_END
        elif event == PUT_READY:
            self._held = raw
        if after == NOTHING:
            owed.popleft()
        else:
            owed[0] = after
        if release != KEEP and self._state == AWAITING:
            self._state = release

    def server_raw(self, count: int) -> None:
        """``count`` raw bytes of the oldest get went by (none: nothing happens)."""
        if not count:
            return
        left = self._reply_raw_left - count
        if not self._owed or self._owed[0] != A_GET_RAW or left < 0 or count < 0:
            due = self._reply_raw_left if self._owed and self._owed[0] == A_GET_RAW else 0
            self._fault(SERVER, f"{count} raw bytes came from the server where {due} were due")
        self._reply_raw_left = left
        if left == 0:
            self._owed[0] = A_GET_END

    # ------------------------------------------------------------ refusals

    def _refuse(self, event: int) -> NoReturn:
        state, owed, error, message = REFUSALS[self._state]
        self._state = state
        if owed != NOTHING:
            self._owed.append(owed)
        got = MESSAGE_NAMES[event]
        if event == STREAM_PUT:
            got = "'put'"
        self._fault(CLIENT, message.format(got=got), error)

    def _fault(self, side: int, message: str,
               error: type[FtError] = ProtocolError) -> NoReturn:
        if side == self._local:
            raise InternalError(f"out of order on our side: {message}")
        raise error(message)
