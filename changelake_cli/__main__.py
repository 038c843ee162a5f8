"""``python -m changelake_cli`` is the ``changelake`` command."""

import sys

from changelake_cli.main import main

sys.exit(main())
