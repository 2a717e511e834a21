"""The fuzz tests share one sandbox process (its imports take seconds)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from tests.fuzz.sandbox import Sandbox

_BOXES: list[Sandbox] = []


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox(tmp_path_factory.mktemp("fuzz-sandbox"))
    _BOXES.append(box)
    yield box
    box.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Cases run per fuzz test and how they ended (``-rA`` or any run that fuzzed)."""
    counts = sum((box.counts for box in _BOXES), Counter())
    if not counts:
        return
    terminalreporter.section("fuzz cases")
    for test in sorted({t for t, _ in counts}):
        kinds = {k: n for (t, k), n in counts.items() if t == test}
        ends = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        terminalreporter.write_line(f"{test}: {sum(kinds.values())} cases ({ends})")
