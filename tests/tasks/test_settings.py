from pathlib import Path

import pytest

from contactq.settings import Settings


def test_child_ids_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTACTQ_CHILD_IDS", "1, 2,5")
    monkeypatch.setenv("CONTACTQ_SERVER_ID", "7")
    s = Settings()
    assert (s.server_id, s.child_ids) == (7, [1, 2, 5])
    monkeypatch.setenv("CONTACTQ_CHILD_IDS", "3")
    assert Settings().child_ids == [3]


def test_config_file_with_environment_on_top(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "contactq.toml"
    config.write_text("server_id = 4\nchild_ids = [1, 2]\n[rate_limits.addContact]\ncount = 2\nperiod_s = 60\n")
    monkeypatch.setenv("CONTACTQ_CONFIG", str(config))
    monkeypatch.delenv("CONTACTQ_SERVER_ID", raising=False)
    monkeypatch.setenv("CONTACTQ_CHILD_IDS", "9")
    s = Settings()
    assert (s.server_id, s.child_ids) == (4, [9])
    assert s.rate_limits["addContact"].count == 2
    assert s.rate_limits["searchContact"].count == 30  # the limits not named keep their defaults


def test_autoscale_bounds_must_make_sense() -> None:
    assert (Settings().worker_autoscale_min, Settings().worker_autoscale_max) == (1, 4)
    with pytest.raises(ValueError, match="autoscale_min"):
        Settings(worker_autoscale_min=5, worker_autoscale_max=2)
