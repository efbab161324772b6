import json
from pathlib import Path

import pytest

from contactq.errors import ConfigurationError
from protocol.fixture import DEFAULT_FIXTURE, load_fixture


def test_default_fixture_loads() -> None:
    fixture = load_fixture(DEFAULT_FIXTURE)
    assert [(a.server_id, a.child_id) for a in fixture.accounts] == [(1, 1), (1, 2)]
    assert len(fixture.people) >= 24 and len(fixture.chatrooms) >= 2 and len(fixture.pending_requests) == 1


def test_fixture_naming_unknown_people_is_refused(tmp_path: Path) -> None:
    doc = json.loads(DEFAULT_FIXTURE.read_text())
    doc["friendships"].append({"account": doc["accounts"][0]["wxid"], "friend": "wxid_nobody"})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ConfigurationError, match="wxid_nobody"):
        load_fixture(path)


def test_missing_fixture_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot load"):
        load_fixture(tmp_path / "absent.json")
