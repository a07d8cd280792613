"""``python -m private_servers prosody|ejabberd [options] [-- COMMAND]``: see private_servers.launcher."""

import sys

from private_servers.launcher import main

sys.exit(main())
