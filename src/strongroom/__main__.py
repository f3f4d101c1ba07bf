"""``python -m strongroom`` is the ``strongroom`` command."""

from strongroom.cli import main

raise SystemExit(main())
