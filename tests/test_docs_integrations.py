"""The Python examples in docs/integrations.md run and print what the page says."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_integrations_page_examples(monkeypatch):
    import torch

    torch.set_num_threads(1)
    monkeypatch.chdir(ROOT)  # the examples name files relative to the repository
    result = doctest.testfile(str(ROOT / "docs" / "integrations.md"), module_relative=False,
                              optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 10
    assert result.failed == 0
