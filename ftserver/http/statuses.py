"""ft's errors as HTTP statuses: the one table every HTTP answer takes its code from."""

from __future__ import annotations

from common.protocol.errors import FtError

STATUS_OF_CODE: dict[str, int] = {
    "bad_request": 400,
    "bad_frame": 400,
    "unknown_op": 405,
    "bad_path": 400,
    "not_found": 404,
    "is_a_directory": 409,
    "not_a_directory": 409,
    "exists": 409,
    "not_empty": 409,
    "locked": 423,
    "busy": 503,
    "permission": 403,
    "integrity": 400,
    "changed": 409,
    "no_space": 507,
    "io_error": 500,
    "timeout": 408,
    "auth_failed": 401,
    "internal": 500,
}
REASONS = {200: "OK", 201: "Created", 204: "No Content", 206: "Partial Content",
           207: "Multi-Status",
           301: "Moved Permanently", 304: "Not Modified", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict",
           410: "Gone", 411: "Length Required", 412: "Precondition Failed",
           413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
           416: "Range Not Satisfiable", 417: "Expectation Failed", 423: "Locked",
           424: "Failed Dependency",
           431: "Request Header Fields Too Large", 460: "Checksum Mismatch",
           500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
           503: "Service Unavailable",
           505: "HTTP Version Not Supported", 507: "Insufficient Storage"}
RETRY_AFTER_SECONDS = "5"


def status_of(error: FtError) -> int:
    return STATUS_OF_CODE.get(error.code, 500)
