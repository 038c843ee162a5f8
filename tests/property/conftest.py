"""Hypothesis profiles: ``ci`` (derandomized, no example database) whenever ``CI`` is set, else
``dev`` (random, the same budget); ``HYPOTHESIS_PROFILE`` chooses one by name."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

#: Examples per property: each runs the whole pipeline on moto (about 2-6 s), so 8 keep the
#: property tests well under two minutes on the 2-core machine.
MAX_EXAMPLES = 8
_COMMON = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
#: No shrinking in CI: one example takes seconds, a shrink can take many minutes; the failing
#: example is printed (and replayable with @reproduce_failure) all the same.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    phases=[Phase.explicit, Phase.generate],
    parent=_COMMON,
)
settings.register_profile("dev", parent=_COMMON)
# The derandomized profile by default, so `make test` is repeatable; HYPOTHESIS_PROFILE=dev explores
# new random examples (it found moto answering CompleteMultipartUpload of an aborted upload with a
# 500, where S3 says NoSuchUpload: changelake_local.moto_server.behave_like_s3).
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


#: Lines the property tests report; shown at the end of the run (with or without -s).
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in REPORT:
        terminalreporter.write_line(line)
