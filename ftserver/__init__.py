"""ftserver: shares one folder over the ft protocol (see docs/protocol.md)."""

__version__ = "0.1.0"
