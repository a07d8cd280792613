"""Log output for twistd: readable text by default, JSON lines on request.

twistd writes text through ``twisted.logger``. For log shippers, set
``[logging] format = "json"`` (component/tap.py then selects this observer), or
run twistd with ``--logger component.logs.json_lines`` (``twist`` has
``--log-format=json``): every event becomes one JSON object per line on
standard output, with its fields (sender, id, namespace, ...) as keys.
"""

from __future__ import annotations

import sys

from twisted.logger import ILogObserver, jsonFileLogObserver


def json_lines() -> ILogObserver:
    """A twistd ``--logger`` factory: JSON lines on standard output."""
    return jsonFileLogObserver(sys.stdout)
