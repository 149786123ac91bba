"""The conversation's table (common/protocol/conversation.py), in memory, without sockets.

Each legal exchange is fed as either end sees it and must be accepted and end
settled; each message out of order must be refused, with the cost the table says
(answered and going on, or broken). A property test builds random conversations
from a simple reference (each operation as the scripts of its two sides, run in
any order that respects what each side waits for) and checks that the table
accepts every one, and that dropping or repeating any one message is noticed.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.protocol.conversation import (
    A_GET,
    A_ONE,
    A_PUT_DONE,
    A_REFUSAL,
    AUTH,
    AUTH_FINAL,
    AUTH_FINAL_NEXT,
    BATCH,
    BROKEN,
    CLIENT,
    ERROR,
    GET,
    GET_END,
    GET_READY,
    GREETING,
    HELLO,
    IDLE,
    LIST,
    MKDIR,
    MOVE,
    OK,
    PUT,
    PUT_DATA,
    PUT_DATA_NEXT,
    PUT_DONE,
    PUT_END,
    PUT_END_NEXT,
    PUT_READY,
    REMOVE,
    SERVER,
    SET_MTIME,
    STAT,
    STREAM_END_NEXT,
    STREAM_PUT,
    WALK,
    Conversation,
)
from common.protocol.errors import FrameError, InternalError, ProtocolError
from common.protocol.requests import GetRequest, PutData, PutEnd, PutRequest

# A step: ("request", event, number), ("client_raw", count), ("reply", event, number),
# ("server_raw", count). Sides by name, so a failure message says what came.
Step = tuple


def feed(talk: Conversation, steps: list[Step]) -> None:
    for step in steps:
        getattr(talk, step[0])(*step[1:])


def greeted(local: int = SERVER) -> Conversation:
    talk = Conversation(local)
    feed(talk, [("request", HELLO), ("reply", OK)])
    return talk


HELLO_STEPS: list[Step] = [("request", HELLO), ("reply", OK)]


# ---------------------------------------------------------------- legal exchanges

LEGAL = {
    "stat": [("request", STAT), ("reply", OK)],
    "file ops answered or refused": [
        ("request", MKDIR), ("reply", OK), ("request", MOVE), ("reply", ERROR),
        ("request", REMOVE), ("reply", OK), ("request", SET_MTIME), ("reply", OK)],
    "list in batches": [("request", LIST), ("reply", BATCH), ("reply", BATCH), ("reply", OK)],
    "walk cut by an error": [("request", WALK), ("reply", BATCH), ("reply", ERROR)],
    "put from 0": [("request", PUT, 10), ("reply", PUT_READY, 0), ("request", PUT_DATA, 0),
                   ("client_raw", 4), ("client_raw", 6), ("request", PUT_END),
                   ("reply", PUT_DONE)],
    "put resumed": [("request", PUT, 10), ("reply", PUT_READY, 7), ("request", PUT_DATA, 7),
                    ("client_raw", 3), ("request", PUT_END), ("reply", PUT_DONE)],
    "put started over": [("request", PUT, 10), ("reply", PUT_READY, 7),
                         ("request", PUT_DATA, 0), ("client_raw", 10), ("request", PUT_END),
                         ("reply", ERROR)],
    "put of an empty file": [("request", PUT, 0), ("reply", PUT_READY, 0),
                             ("request", PUT_DATA, 0), ("request", PUT_END),
                             ("reply", PUT_DONE)],
    "put resumed whole": [("request", PUT, 5), ("reply", PUT_READY, 5),
                          ("request", PUT_DATA, 5), ("client_raw", 0), ("request", PUT_END),
                          ("reply", PUT_DONE)],
    "put refused": [("request", PUT, 10), ("reply", ERROR), ("request", STAT), ("reply", OK)],
    "get": [("request", GET), ("reply", GET_READY, 9), ("server_raw", 9), ("reply", GET_END)],
    "get of an empty file": [("request", GET), ("reply", GET_READY, 0), ("reply", GET_END)],
    "get changed meanwhile": [("request", GET), ("reply", GET_READY, 9), ("server_raw", 2),
                              ("server_raw", 7), ("reply", ERROR)],
    "get refused": [("request", GET), ("reply", ERROR)],
    "streamed puts, as the client sends them": [
        ("request", STREAM_PUT, 3), ("client_raw", 3), ("request", PUT_END),
        ("request", STREAM_PUT, 0), ("request", PUT_END),
        ("request", STREAM_PUT, 5), ("client_raw", 5), ("request", PUT_END),
        ("reply", PUT_DONE), ("reply", ERROR), ("reply", PUT_DONE)],
    "streamed puts, one by one": [
        ("request", STREAM_PUT, 3), ("client_raw", 3), ("request", PUT_END),
        ("reply", PUT_DONE), ("request", STREAM_PUT, 1), ("client_raw", 1),
        ("request", PUT_END), ("reply", PUT_DONE)],
    "pipelined gets": [
        ("request", GET), ("request", GET), ("request", GET),
        ("reply", GET_READY, 2), ("server_raw", 2), ("reply", GET_END),
        ("reply", ERROR),
        ("reply", GET_READY, 1), ("server_raw", 1), ("reply", GET_END)],
    "a burst, then a listing": [
        ("request", STREAM_PUT, 1), ("client_raw", 1), ("request", PUT_END),
        ("request", LIST), ("reply", PUT_DONE), ("reply", OK)],
    "login": [("request", AUTH), ("reply", OK), ("request", AUTH_FINAL), ("reply", OK)],
    "login failed": [("request", AUTH), ("reply", OK), ("request", AUTH_FINAL),
                     ("reply", ERROR)],
    "login refused at once": [("request", AUTH), ("reply", ERROR)],
}


@pytest.mark.parametrize("local", [CLIENT, SERVER], ids=["client", "server"])
@pytest.mark.parametrize("steps", LEGAL.values(), ids=LEGAL.keys())
def test_legal_exchanges_are_accepted_and_end_settled(steps, local):
    talk = Conversation(local)
    assert talk.state == GREETING
    feed(talk, HELLO_STEPS + steps)
    assert talk.settled, (talk.state, talk.owed)


def test_a_conversation_can_start_after_hello():
    talk = Conversation(CLIENT, greeted=True)
    assert talk.settled
    feed(talk, LEGAL["put resumed"])
    assert talk.settled


def test_parsed_requests_are_fed_as_their_events():
    talk = greeted()
    talk.receive(PutRequest("a", 4, 1.0, stream=True))
    assert talk.state != IDLE
    talk.client_raw(4)
    talk.receive(PutEnd("0" * 64))
    assert talk.owed == (A_PUT_DONE,)
    talk.reply(PUT_DONE)
    talk.receive(PutRequest("b", 4, 1.0))
    talk.reply(PUT_READY, 0)
    assert talk.state == PUT_DATA_NEXT
    talk.receive(PutData(0))
    talk.client_raw(4)
    talk.receive(PutEnd("0" * 64))
    talk.reply(PUT_DONE)
    talk.receive(GetRequest("a"))
    assert talk.owed == (A_GET,)


def test_a_waiting_client_moves_on_only_with_its_answer():
    talk = greeted()
    feed(talk, [("request", STAT), ("request", PUT, 4)])
    talk.reply(OK)  # the stat's: the put still waits
    with pytest.raises(ProtocolError):
        talk.request(PUT_DATA, 0)
    talk = greeted()
    feed(talk, [("request", STAT), ("request", PUT, 4), ("reply", OK), ("reply", PUT_READY, 0)])
    assert talk.state == PUT_DATA_NEXT


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("event", [PUT_END, PUT_DATA, AUTH_FINAL, HELLO])
def test_a_request_out_of_place_between_requests_is_answered_and_the_talk_goes_on(event):
    talk = greeted()
    with pytest.raises(ProtocolError, match="is not valid here") as caught:
        talk.request(event)
    assert type(caught.value) is ProtocolError  # bad_request, not bad_frame
    assert talk.owed == (A_REFUSAL,)
    with pytest.raises(InternalError):  # the server's own misstep, as it sees it
        talk.reply(OK)  # a refusal is answered with an error, nothing else
    talk.reply(ERROR)
    assert talk.settled
    feed(talk, LEGAL["stat"])
    assert talk.settled


def test_anything_but_hello_first_is_a_bad_frame():
    talk = Conversation(SERVER)
    with pytest.raises(FrameError, match="the first request must be 'hello'"):
        talk.request(LIST)
    assert talk.state == BROKEN


def test_put_data_must_follow_put_ready_with_an_offset_it_offered():
    talk = greeted()
    feed(talk, [("request", PUT, 10), ("reply", PUT_READY, 4)])
    with pytest.raises(ProtocolError, match="offset must be 0 or 4"):
        talk.request(PUT_DATA, 3)
    assert talk.state == BROKEN
    talk = greeted()
    feed(talk, [("request", PUT, 10), ("reply", PUT_READY, 4)])
    with pytest.raises(ProtocolError, match="expected 'put_data', got 'put_end'"):
        talk.request(PUT_END)
    assert talk.state == BROKEN and not talk.owed  # the stream is out of step: close


def test_an_offer_past_the_end_cannot_be_taken():
    talk = greeted()
    feed(talk, [("request", PUT, 3), ("reply", PUT_READY, 5)])
    with pytest.raises(ProtocolError):
        talk.request(PUT_DATA, 5)
    talk = greeted()
    feed(talk, [("request", PUT, 3), ("reply", PUT_READY, 5), ("request", PUT_DATA, 0),
                ("client_raw", 3), ("request", PUT_END), ("reply", PUT_DONE)])
    assert talk.settled


def test_raw_bytes_are_counted_against_what_was_announced():
    talk = greeted()
    feed(talk, [("request", STREAM_PUT, 5), ("client_raw", 3)])
    with pytest.raises(ProtocolError, match="3 raw bytes came from the client where 2"):
        talk.client_raw(3)
    talk = greeted()
    feed(talk, [("request", STREAM_PUT, 5), ("client_raw", 3)])
    with pytest.raises(ProtocolError, match="where raw bytes were due"):
        talk.request(PUT_END)
    talk = greeted()
    with pytest.raises(ProtocolError):
        talk.client_raw(1)  # none announced
    talk = greeted(CLIENT)  # the server's raw bytes, as the client reads them
    feed(talk, [("request", GET), ("reply", GET_READY, 4), ("server_raw", 4)])
    with pytest.raises(ProtocolError):
        talk.server_raw(1)
    talk = greeted(CLIENT)
    feed(talk, [("request", GET), ("reply", GET_READY, 4)])
    with pytest.raises(ProtocolError, match="get_end came where a get's raw bytes"):
        talk.reply(GET_END)


def test_a_resumable_put_that_does_not_end_with_put_end_is_answered_and_goes_on():
    talk = greeted()
    feed(talk, [("request", PUT, 2), ("reply", PUT_READY, 0), ("request", PUT_DATA, 0),
                ("client_raw", 2)])
    assert talk.state == PUT_END_NEXT
    with pytest.raises(ProtocolError, match="expected 'put_end', got 'stat'"):
        talk.request(STAT)
    assert talk.owed == (A_REFUSAL,)
    talk.reply(ERROR)
    assert talk.settled


def test_a_streamed_put_that_does_not_end_with_put_end_breaks_the_stream():
    talk = greeted()
    feed(talk, [("request", STREAM_PUT, 1), ("client_raw", 1), ("request", PUT_END),
                ("request", STREAM_PUT, 1), ("client_raw", 1)])
    assert talk.state == STREAM_END_NEXT
    with pytest.raises(ProtocolError, match="expected 'put_end' after a streamed put"):
        talk.request(LIST)
    assert talk.state == BROKEN
    talk.reply(PUT_DONE)  # the first file's answer may still go out before the close
    assert talk.owed == ()
    with pytest.raises(ProtocolError):
        talk.request(STAT)


def test_auth_final_must_follow_the_challenge():
    talk = greeted()
    feed(talk, [("request", AUTH), ("reply", OK)])
    assert talk.state == AUTH_FINAL_NEXT
    with pytest.raises(ProtocolError, match="expected 'auth_final', got 'list'"):
        talk.request(LIST)
    talk.reply(ERROR)
    assert talk.settled


def test_a_malformed_request_costs_what_one_out_of_order_costs():
    talk = greeted()
    talk.refused()  # between requests: answered with its error
    assert talk.owed == (A_REFUSAL,)
    talk.reply(ERROR)
    assert talk.settled
    feed(talk, [("request", PUT, 3), ("reply", PUT_READY, 0)])
    talk.refused()  # where put_data was due: broken
    assert talk.state == BROKEN


@pytest.mark.parametrize("before, reply", [
    ([], OK),
    ([("request", STAT), ("reply", OK)], ERROR),
    ([("request", PUT, 4)], PUT_DONE),
    ([("request", STREAM_PUT, 1), ("client_raw", 1)], PUT_DONE),  # before its put_end
    ([("request", GET)], GET_END),
    ([("request", STREAM_PUT, 0), ("request", PUT_END), ("request", LIST)], BATCH),
    ([("request", STAT)], BATCH),
], ids=["unasked", "twice", "put_done-for-put_ready", "stream-before-put_end",
        "get_end-first", "listing-before-the-put", "batch-for-stat"])
def test_a_reply_that_is_not_owed_is_refused(before, reply):
    client = greeted(CLIENT)
    feed(client, before)
    with pytest.raises(ProtocolError):  # the server's fault, as the client sees it
        client.reply(reply)
    server = greeted(SERVER)
    feed(server, before)
    with pytest.raises(InternalError):  # our own fault, as the server sees it
        server.reply(reply)


def test_our_own_misstep_is_an_internal_error_not_the_peers():
    talk = greeted(CLIENT)
    with pytest.raises(InternalError, match="out of order on our side"):
        talk.request(PUT_END)
    talk = greeted(CLIENT)
    talk.request(STREAM_PUT, 2)
    with pytest.raises(InternalError):
        talk.client_raw(3)


def test_each_answer_kind_is_owed_by_its_request():
    talk = greeted()
    feed(talk, [("request", STAT), ("request", GET), ("request", STREAM_PUT, 0),
                ("request", PUT_END)])
    assert talk.owed == (A_ONE, A_GET, A_PUT_DONE)


# ---------------------------------------------------------------- the property


def _raw(side: str, count: int, draw: st.DrawFn) -> list[Step]:
    """``count`` raw bytes in random chunks of at least one byte."""
    steps: list[Step] = []
    while count:
        chunk = draw(st.integers(1, count))
        steps.append((side, chunk))
        count -= chunk
    return steps


@st.composite
def operations(draw: st.DrawFn) -> tuple[list[list[tuple[str, list[Step]]]], list[bool]]:
    """Operations as phases of (side, steps), and whether each makes the client wait for
    its first answer before it sends anything else (hello, put and auth do)."""
    ops: list[list[tuple[str, list[Step]]]] = [
        [("c", [("request", HELLO)]), ("s", [("reply", OK)])]]
    waits = [True]
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["one", "batches", "put", "stream", "get", "auth"]))
        failed = draw(st.booleans())
        end = [("reply", ERROR if failed else OK)]
        if kind == "one":
            event = draw(st.sampled_from([STAT, MKDIR, MOVE, REMOVE, SET_MTIME]))
            op = [("c", [("request", event)]), ("s", end)]
        elif kind == "batches":
            batches = [("reply", BATCH)] * draw(st.integers(0, 3))
            op = [("c", [("request", draw(st.sampled_from([LIST, WALK])))]),
                  ("s", batches + end)]
        elif kind == "put":
            size = draw(st.integers(0, 20))
            if draw(st.integers(0, 4)) == 0:
                op = [("c", [("request", PUT, size)]), ("s", [("reply", ERROR)])]
            else:
                held = draw(st.integers(0, 25))
                offset = draw(st.sampled_from([0, held])) if held <= size else 0
                op = [("c", [("request", PUT, size)]), ("s", [("reply", PUT_READY, held)]),
                      ("c", [("request", PUT_DATA, offset)] + _raw("client_raw", size - offset,
                                                                   draw)
                       + [("request", PUT_END)]),
                      ("s", [("reply", ERROR if failed else PUT_DONE)])]
        elif kind == "stream":
            size = draw(st.integers(0, 20))
            op = [("c", [("request", STREAM_PUT, size)] + _raw("client_raw", size, draw)
                   + [("request", PUT_END)]),
                  ("s", [("reply", ERROR if failed else PUT_DONE)])]
        elif kind == "get":
            if draw(st.integers(0, 4)) == 0:
                op = [("c", [("request", GET)]), ("s", [("reply", ERROR)])]
            else:
                count = draw(st.integers(0, 20))
                op = [("c", [("request", GET)]),
                      ("s", [("reply", GET_READY, count)] + _raw("server_raw", count, draw)
                       + [("reply", ERROR if failed else GET_END)])]
        else:
            if draw(st.integers(0, 4)) == 0:
                op = [("c", [("request", AUTH)]), ("s", [("reply", ERROR)])]
            else:
                op = [("c", [("request", AUTH)]), ("s", [("reply", OK)]),
                      ("c", [("request", AUTH_FINAL)]), ("s", end)]
        ops.append(op)
        waits.append(kind in ("put", "auth"))
    return ops, waits


@st.composite
def conversations(draw: st.DrawFn) -> list[Step]:
    """A legal conversation: the operations' phases run in any order in which the client
    sends its requests in order, the server answers in order, and each phase of an
    operation comes after the one before it (a reply after its request, put_data after
    put_ready)."""
    ops, waits = draw(operations())
    done = [0] * len(ops)  # phases done, per operation
    steps: list[Step] = []

    def ready(side: str) -> int | None:
        for index, op in enumerate(ops):  # the first operation with this side's phase left
            left = [phase for phase in op[done[index]:] if phase[0] == side]
            if not left:
                continue
            if op[done[index]][0] != side:
                return None  # its other side must go first
            if side == "c" and index and waits[index - 1] and done[index - 1] < 2:
                return None  # the operation before waits for its first answer
            return index
        return None

    while any(count < len(op) for count, op in zip(done, ops, strict=True)):
        sides = [side for side in ("c", "s") if ready(side) is not None]
        index = ready(draw(st.sampled_from(sides)))
        assert index is not None
        steps += ops[index][done[index]][1]
        done[index] += 1
    return steps


def _noticed(steps: list[Step]) -> bool:
    talk = Conversation(SERVER)
    try:
        feed(talk, steps)
    except (ProtocolError, InternalError):
        return True
    return not talk.settled


@settings(max_examples=300, deadline=None)
@given(conversations())
def test_every_legal_conversation_is_accepted_and_ends_settled(steps):
    for local in (CLIENT, SERVER):
        talk = Conversation(local)
        feed(talk, steps)
        assert talk.settled


@settings(max_examples=300, deadline=None)
@given(conversations(), st.data())
def test_dropping_or_repeating_a_message_is_noticed(steps, data):
    index = data.draw(st.integers(0, len(steps) - 1))
    step = steps[index]
    if step[:2] == ("reply", BATCH):
        return  # a listing may have any number of batches
    if step != ("reply", GET_READY, 0):  # then an error: it reads as a get refused at once
        assert _noticed(steps[:index] + steps[index + 1:]), f"dropped {step}"
    assert _noticed(steps[:index + 1] + steps[index:]), f"repeated {step}"
