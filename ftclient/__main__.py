"""Allow ``python -m ftclient``."""

from ftclient.cli.main import main

raise SystemExit(main())
