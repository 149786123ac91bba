"""Allow ``python -m ftclient``."""

from ftclient.cli import main

raise SystemExit(main())
