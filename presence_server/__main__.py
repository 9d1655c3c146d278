"""``python -m presence_server`` - the same as the ``presence-server`` command."""

from presence_server.cli import main

raise SystemExit(main())
