"""`python -m asyncgroups`: the same command as `asyncgroups`."""

from asyncgroups.cli import main

raise SystemExit(main())
