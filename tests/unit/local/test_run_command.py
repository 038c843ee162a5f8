"""``python -m changelake_local run`` (``make run``): what it tells the operator before the pipeline runs."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from changelake_local import pipeline
from changelake_local.__main__ import main
from changelake_local.deploy import DeployedStack


@pytest.fixture
def own_signal_handlers() -> Iterator[None]:
    """``run`` installs its SIGINT and SIGTERM handlers; pytest gets its own back afterwards."""
    saved = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


@pytest.mark.usefixtures("own_signal_handlers")
@pytest.mark.parametrize(("port", "listening"), [("0", 54321), ("4566", 4566), (None, 4566)])
def test_run_prints_the_changelake_line_for_the_port_the_endpoint_listens_on(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    port: str | None,
    listening: int,
) -> None:
    # GIVEN a pipeline whose endpoint listens on `listening` (the OS's choice for --port 0)
    chosen: list[int] = []

    def deployed_then_stopped(
        options: pipeline.RunOptions,
        *,
        on_progress: pipeline.ProgressCallback | None = None,
        stop_requested: threading.Event | None = None,
        on_deployed: Callable[[DeployedStack], None] | None = None,
    ) -> pipeline.Summary:
        chosen.append(options.port)
        stack = DeployedStack("changelake", f"http://127.0.0.1:{listening}", {}, {}, {}, {})
        if on_deployed is not None:
            on_deployed(stack)
        raise KeyboardInterrupt  # the run itself is the integration tests'

    monkeypatch.setattr(pipeline, "run_pipeline", deployed_then_stopped)
    # WHEN `make run` starts with that --port (or none: 4566)
    code = main(["run", "--plain", "--lake", str(tmp_path), *(["--port", port] if port else [])])
    # THEN once the stack is deployed it prints the line that operates it, with the real port
    assert code == 130
    assert chosen == [int(port or 4566)]
    err = capsys.readouterr().err
    line = f".venv/bin/changelake --endpoint http://127.0.0.1:{listening} status"
    assert f"operate the running stack with: {line}\n" in err
    assert ":0 " not in err
