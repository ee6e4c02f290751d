"""Fixtures for the workflow tests."""

from __future__ import annotations

import copy

import pytest
from workflow_helpers import load_config


@pytest.fixture
def tiny_config() -> dict:
    return copy.deepcopy(load_config("tiny"))
