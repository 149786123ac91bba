"""Shared by ftserver and ftclient: the wire protocol (sans-IO), errors, path rules, hashing.

Nothing in this package opens a socket or imports ftserver/ftclient.
"""
