"""Connections: the listener, admission, the executors, TLS, discovery and bandwidth."""
