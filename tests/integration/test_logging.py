"""Log formats as an operator gets them: text by default (the other tests), JSON lines on request."""

import json

import pytest

from tests.integration.conftest import BUNDLED
from tests.integration.processes import ComponentProcess, write_config
from tests.integration.servers import EACH_SERVER

pytestmark = [pytest.mark.integration, pytest.mark.servers(*EACH_SERVER)]


def test_json_lines_carry_each_events_fields_and_never_the_secret(server, tmp_path, secret_file):
    config = write_config(tmp_path / "json.toml", server.endpoint, secret_file, [BUNDLED])
    process = ComponentProcess(config, twistd_options=("--logger", "component.logs.json_lines"))
    try:
        process.wait_for_log('"Authenticated as {jid} to {server}"')
        # jsonFileLogObserver writes RFC 7464 JSON text sequences: each record starts with RS (\x1e).
        events = [json.loads(line.lstrip("\x1e")) for line in process.lines if line.lstrip("\x1e").startswith("{")]
        [authenticated] = [event for event in events if event.get("log_format", "").startswith("Authenticated")]
        assert authenticated["jid"] == "iq.localhost"
        assert any(event.get("log_namespace") == "component.loader" for event in events)
        assert secret_file.read_text().strip() not in process.log()
    finally:
        process.stop()


@pytest.mark.parametrize("twist", [False, True], ids=["twistd", "twist"])
def test_logging_format_json_in_the_configuration_selects_json_lines(server, tmp_path, secret_file, twist):
    config = write_config(
        tmp_path / "json.toml", server.endpoint, secret_file, [BUNDLED], '[logging]\nformat = "json"\n'
    )
    process = ComponentProcess(config, twist=twist, twist_options=())  # the configuration alone decides
    try:
        process.wait_for_log('"Authenticated as {jid} to {server}"')
        records = [line.lstrip("\x1e") for line in process.lines if line.strip()]
        assert records and all(record.startswith("{") for record in records), process.log()
        assert all(isinstance(json.loads(record), dict) for record in records)
    finally:
        process.stop()
