"""The page's own static files (stylesheet, upload script), from the package, at /.ft-assets/.

No CDN, no framework: the page works offline on a LAN. Only the files listed here
are served; any other name under /.ft-assets/ is not found.
"""

from __future__ import annotations

from importlib import resources

from common.protocol.errors import NotFound
from ftserver.http.exchange import HttpExchange
from ftserver.http.headers import PAGE

ASSET_TYPES = {"page.css": "text/css; charset=utf-8",
               "upload.js": "text/javascript; charset=utf-8"}


def serve_asset(exchange: HttpExchange, name: str) -> None:
    kind = ASSET_TYPES.get(name)
    if kind is None:
        raise NotFound("no such file")
    body = resources.files("ftserver.http").joinpath("assets", name).read_bytes()
    exchange.respond(200, [*PAGE, ("Cache-Control", "max-age=3600")], body, kind)
