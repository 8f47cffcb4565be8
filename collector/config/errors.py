"""The one error every file fleetdesk reads raises: file, line, key and what is wrong.

Rule, policy, calendar, inventory, sinks, SNMP profile and collector config loaders all raise
``ConfigError``; ``str()`` is one line a person can act on
(``policies/x.yaml:12: levels.A.targets: unknown key``), and the fields let a caller (the CLI,
the REST API) show them apart.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """An invalid file or value; ``str()`` is one line naming file, line, key."""

    def __init__(self, source: str, key: str, problem: str, line: int | None = None) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        self.line = line
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")
