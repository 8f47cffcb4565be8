"""``scale.partitions`` is refused, in one line naming the file and key, without what it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collector.config.collector import parse_config
from collector.config.errors import ConfigError

PG = "postgresql+psycopg://fleetdesk@127.0.0.1/fleetdesk"


def test_partitions_need_postgresql_and_an_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.csv"
    inventory.write_text("device\n")
    file = tmp_path / "collector.yaml"
    with pytest.raises(ConfigError, match=r"yaml: scale\.partitions: needs store\.url"):
        parse_config(f"rules: {{inventory: {inventory}}}\nscale: {{partitions: 8}}\n", file)
    with pytest.raises(ConfigError, match=r"scale\.partitions: needs rules\.inventory"):
        parse_config(f"store: {{url: '{PG}'}}\nscale: {{partitions: 8}}\n", file)
    cfg = parse_config(
        f"store: {{url: '{PG}'}}\nrules: {{inventory: {inventory}}}\nscale: {{partitions: 8}}\n",
        file,
    )
    assert cfg.scale.partitions == 8 and cfg.scale.lease_check_s == 1.0
    with pytest.raises(ConfigError, match=r"scale\.partitions"):
        parse_config("scale: {partitions: -1}\n", file)


def test_the_command_says_it_in_one_line(tmp_path: Path) -> None:
    file = tmp_path / "collector.yaml"
    file.write_text("scale:\n  partitions: 4\n")
    done = subprocess.run(
        [sys.executable, "-m", "collector", "collector", "--config", str(file), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"fleetdesk collector: {file}: scale.partitions: needs store.url on PostgreSQL (shared)"
    ]
