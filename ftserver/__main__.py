"""Allow ``python -m ftserver``."""

from ftserver.cli import main

raise SystemExit(main())
