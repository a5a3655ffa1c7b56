"""``python -m mutt`` is the ``mutt`` command."""

from mutt.cli import main

raise SystemExit(main())
