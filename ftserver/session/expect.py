"""The next request inside an exchange (a put's put_data and put_end, a login's proof),
read within a deadline and let through only where the conversation's table allows it.

A frame that does not parse is refused as the table says a refusal costs in that
state; a request out of order raises the table's error. Either way the caller
answers or closes as for any bad request.
"""

from __future__ import annotations

import time
from typing import TypeVar

from common.io.channel import Channel
from common.protocol.conversation import Conversation
from common.protocol.errors import ProtocolError
from common.protocol.requests import AuthFinal, PutData, PutEnd, parse_request

Expected = TypeVar("Expected", PutData, PutEnd, AuthFinal)


def expect_next(channel: Channel, talk: Conversation, cls: type[Expected],
                seconds: float) -> Expected:
    """The next request, which must be a ``cls`` now, within ``seconds`` for the whole frame."""
    try:
        request = parse_request(channel.receive(deadline=time.monotonic() + seconds))
    except ProtocolError:
        talk.refused()
        raise
    talk.receive(request)  # anything the table does not let come now is refused
    assert isinstance(request, cls), "the conversation's table let another request through"
    return request
