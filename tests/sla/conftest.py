"""Fixtures of the SLA tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _parse_policies_in_every_test_under_mutation() -> None:
    """Under mutmut only: forget the policies and calendars read so far, so each SLA test that
    uses one parses it again. Without this the process-wide caches hide parsing from every test
    but the first that reads a file, so mutmut (which runs a mutant against only the tests that
    called its function) never runs the tests that check what was parsed. Only here, not for
    the whole suite: every ticket and rules test would then count as a test of the parsers, and
    each surviving parser mutant would run them all (hours)."""
    if "MUTANT_UNDER_TEST" in os.environ:
        from collector.sla import calendar, policy

        policy.clear_policy_cache()
        calendar._load_file.cache_clear()
