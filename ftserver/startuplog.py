"""The start-up lines that say how the server is protected: TLS and its fingerprint, who may log in.

An operator reading the log must learn, without opening the config, whether
traffic is encrypted, which fingerprint clients should see, and what someone
without an account may do.
"""

from __future__ import annotations

import logging

from ftserver.config import ServerConfig
from ftserver.net.tlscert import certificate_fingerprint

log = logging.getLogger("ftserver")

_ANONYMOUS = {
    "none": "only logged-in users may do anything",
    "ro": "anyone who can reach this address may list and get",
    "rw": "anyone who can reach this address may list, get and put",
}


def log_security(config: ServerConfig) -> None:
    if config.tls.enabled and config.tls.cert is not None:
        log.info("TLS on; certificate SHA-256 fingerprint: %s",
                 certificate_fingerprint(config.tls.cert))
    else:
        log.info("TLS off: file contents and names cross the network readable by anyone on it")
    users = ", ".join(f"{u.name} ({u.access}{', home ' + u.home if u.home else ''})"
                      for u in config.users) or "none configured"
    log.info("users: %s", users)
    log.info("anonymous access: %s (%s)", config.anonymous_access,
             _ANONYMOUS[config.anonymous_access])
