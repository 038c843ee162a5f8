"""A function's execution environments (changelake_local.functions.ExecutionEnvironments)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from changelake_local.deployed_stack import FunctionSpec
from changelake_local.functions import ExecutionEnvironments, LocalFunction

HANDLER = """
import time

def handler(event, context):
    started = time.monotonic()
    time.sleep(0.2)
    if event.get("fail"):
        raise RuntimeError("failed")
    return {"started": started, "ended": time.monotonic(), "module": __name__}
"""


def function(tmp_path: Path) -> LocalFunction:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="PieceFunction",
        name="piece",
        arn="arn:aws:lambda:us-east-1:123456789012:function:piece",
        code_dir=tmp_path,
        handler="app.handler",
        environment={},
        timeout=30,
        memory_mb=128,
    )
    return LocalFunction(spec)


def test_concurrent_invocations_use_at_most_limit_environments_each_one_at_a_time(tmp_path: Path) -> None:
    # GIVEN a function with 2 execution environments
    environments = ExecutionEnvironments(function(tmp_path), limit=2)
    results: list[dict[str, Any]] = []
    # WHEN 6 invocations arrive at once
    threads = [threading.Thread(target=lambda: results.append(environments.invoke({}))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN all ran, in 2 environments (modules), never more than 2 at a moment
    edges = sorted([(r["started"], 1) for r in results] + [(r["ended"], -1) for r in results])
    running = [sum(step for _, step in edges[: i + 1]) for i in range(len(edges))]
    assert len(results) == 6
    assert max(running) == 2
    assert len({r["module"] for r in results}) == 2
    assert environments.invocations == 6


def test_errors_of_every_environment_are_counted(tmp_path: Path) -> None:
    environments = ExecutionEnvironments(function(tmp_path), limit=2)
    with pytest.raises(RuntimeError, match="failed"):
        environments.invoke({"fail": True})
    assert (environments.errors, environments.last_error) == (1, "RuntimeError: failed")


def test_a_function_needs_an_environment(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one execution environment"):
        ExecutionEnvironments(function(tmp_path), limit=0)
