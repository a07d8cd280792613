"""``twistd iqresponder`` and ``twist iqresponder``: command-line options and ``makeService``.

Configuration and handler problems end the process with one line on stderr
naming the file and the key, and exit status 78, never a traceback.
"""

from __future__ import annotations

import sys
from typing import ClassVar, NoReturn

from twisted.logger import jsonFileLogObserver

from component.config import Overrides, Settings, load
from component.config_values import ConfigError
from component.loader import HandlerLoadError
from component.process import EX_CONFIG, ProcessPolicy
from component.registry import Registry
from component.service import Component
from component.twisted_typed import Options as UsageOptions


def _fail(message: str, status: int = EX_CONFIG) -> NoReturn:
    sys.stderr.write(f"iqresponder: {message}\n")
    raise SystemExit(status)


class Options(UsageOptions):
    """The command line; each option overrides its key in the configuration file."""

    synopsis = (
        "--config FILE [--jid JID] [--instance-jid JID] [--server ENDPOINT] [--secret-file FILE] [--handlers DIR ...]"
    )
    longdesc = "An XMPP external component (XEP-0114) that answers Iq requests from drop-in handler modules."
    optParameters: ClassVar[list[list[str | None]]] = [
        ["config", "c", None, "The configuration file (TOML); required."],
        ["jid", None, None, "The component's domain (overrides component.jid)."],
        ["instance-jid", None, None, "This instance's own name; overrides instance_jid."],
        ["server", None, None, "Server endpoint string; overrides component.server."],
        ["secret-file", None, None, "File with the shared secret; overrides secret_file."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["handlers"] = []
        self.settings: Settings | None = None

    def opt_handlers(self, directory: str) -> None:
        """Handler directory, repeatable; overrides directories."""
        self["handlers"].append(directory)

    def postOptions(self) -> None:
        if not self["config"]:
            _fail("--config FILE is required (see --help)", status=2)
        overrides = Overrides(
            jid=self["jid"],
            instance_jid=self["instance-jid"],
            server=self["server"],
            secret_file=self["secret-file"],
            handler_directories=tuple(self["handlers"]),
        )
        self.overrides = overrides
        try:
            self.settings = load(self["config"], overrides)
        except ConfigError as e:
            _fail(str(e))
        if self.settings.log_format == "json":
            self._choose_json_logs()

    def _choose_json_logs(self) -> None:
        """``[logging] format = "json"``: tell the runner (twistd or twist) to log JSON lines.

        Both choose their log observer after the plugin's options are parsed, from
        their own options, which a plugin's options can reach as ``parent``. A
        choice made on the command line (``--logger``, ``--log-format``) wins.
        """
        runner = getattr(self, "parent", None)
        if runner is None:
            return
        if hasattr(runner, "opt_log_format"):  # twist
            if "fileLogObserverFactory" not in runner:
                runner["fileLogObserverFactory"] = jsonFileLogObserver
        elif not runner.get("logger"):  # twistd
            runner["logger"] = "component.logs.json_lines"  # twistd imports it in its own postOptions


def makeService(options: Options) -> ProcessPolicy:
    """Build the component under the process's policy and load its handler modules; exit on any loading problem."""
    settings = options.settings
    assert settings is not None, "twistd calls makeService only after postOptions has read the configuration"
    policy = ProcessPolicy()
    component = Component(
        settings, Registry(), overrides=options.overrides, on_refused=policy.refused, on_replaced=policy.replaced
    )
    try:
        component.load_handlers()
    except HandlerLoadError as e:
        _fail(str(e))  # one line naming the file (and the key, for options: the loader knows the configuration file)
    return policy.serve(component)
