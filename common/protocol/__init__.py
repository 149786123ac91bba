"""The ft wire protocol, sans-IO: frames, messages, errors, name rules, SCRAM, the
discovery codec. Nothing here touches a socket, a thread or a file (tests/test_imports.py)."""
