"""Start iqresponder for a benchmark as users start it: twistd and a configuration file."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TWISTD = Path(sys.executable).parent / "twistd"


def extra_handlers_module(count: int, advertised: bool = False) -> str:
    """A handler module with ``count`` responders in namespaces urn:example:ns{i}.

    By default they are not advertised in disco#info (``disco=False``), so that
    the disco#info reply stays the same size and only the dispatch cost can
    change; the peers of ../shared/bench do not advertise theirs either.
    """
    lines = ["from component import responder", ""]
    for index in range(count):
        declaration = f"@responder('urn:example:ns{index}', 'get'{'' if advertised else ', disco=False'})"
        lines += [declaration, f"def extra_{index}(request):", "    return None", ""]
    return "\n".join(lines) + "\n"


def write_config(
    work: Path,
    port: int,
    secret: str,
    jid: str = "iq.localhost",
    extra_handlers: int = 0,
    advertised: bool = False,
    store_url: str | None = None,
    extra_directories: Sequence[Path] = (),
    extra_toml: str = "",
) -> Path:
    """A configuration in ``work``: bundled handlers, the echo handler, and ``extra_handlers`` more.

    With a ``store_url``, also the examples (examples/handlers/: the store-backed custom_xep.py and the
    command reboot.py) and ``[store] url``; without, the configuration is what it was before the store
    existed. ``extra_directories`` follow those, and ``extra_toml`` (tables not written here, such as
    ``[access]``) ends the file.
    """
    work.mkdir(parents=True, exist_ok=True)
    (work / "secret.txt").write_text(secret)
    (work / "secret.txt").chmod(0o600)
    directories = [ROOT / "handlers", ROOT / "bench" / "handlers"]
    if store_url is not None:
        directories.append(ROOT / "examples" / "handlers")
    directories.extend(extra_directories)
    if extra_handlers:
        (work / "extra").mkdir(exist_ok=True)
        (work / "extra" / "extra_responders.py").write_text(extra_handlers_module(extra_handlers, advertised))
        directories.append(work / "extra")
    listed = ", ".join(f'"{directory}"' for directory in directories)
    config = work / "iqresponder.toml"
    config.write_text(
        f"""[component]
jid = "{jid}"
secret_file = "secret.txt"
server = "tcp:host=127.0.0.1:port={port}"

[handlers]
directories = [{listed}]

[limits]
# The load generator is one sender at full speed: lift the per-sender rate limit.
sender_rate = 1e9
sender_burst = 1000000000
"""
    )
    if store_url is not None:
        with config.open("a") as file:
            file.write(f'\n[store]\nurl = "{store_url}"\n')
    if extra_toml:
        with config.open("a") as file:
            file.write("\n" + extra_toml)
    return config


def twistd_command(config: Path) -> list[str]:
    return [str(TWISTD), "--nodaemon", "--pidfile=", "--logfile=-", "iqresponder", "--config", str(config)]


def start(config: Path, log: Path) -> subprocess.Popen:
    """Start the component; its log goes to ``log``."""
    with log.open("w") as output:
        return subprocess.Popen(twistd_command(config), stdout=output, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM by pid, then SIGKILL if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
    return process.returncode
