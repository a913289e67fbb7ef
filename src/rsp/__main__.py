"""`python -m rsp` runs the same CLI as the `rsp` command."""

from rsp.cli import main

raise SystemExit(main())
