"""A handler's cold start in a fresh interpreter: how long importing it takes and what it loads.

Lambda imports ``app.py`` once per execution environment, with the layer (``shared/``) and the
function's code on ``sys.path``; everything that import costs is billed as the init phase and,
for the stream consumer, paid as lag on every scale-out. ``cold_start`` runs that import alone
in a new ``python`` process (the repository root and ``shared/`` on ``PYTHONPATH``, as the tests
and ``make invoke`` load the handlers) and reports its CPU and wall time and ``sys.modules``
afterwards. The benchmark's row 8 times it; ``tests/functional/test_cold_start_imports.py``
checks what each handler loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The handler packages under ``functions/``, in pipeline order.
HANDLERS = ("stream_consumer", "aggregator", "compaction", "snapshot", "dlq_redrive")

#: Every variable a handler reads, set as the template sets them (the redrive function with both
#: failure queues), with tracing off as in the tests and ``make invoke``.
ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_SERVICE_NAME": "changelake",
    "POWERTOOLS_METRICS_NAMESPACE": "Changelake",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "LOG_ITEM_DATA": "false",
    "BUCKET_NAME": "changelake-databucket-cold",
    "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-ChangeQueue",
    "DLQ_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-ChangeDLQ",
    "STREAM_FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-StreamFailureQueue",
    "ASYNC_FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/changelake-AsyncFailureQueue",
}

#: Lambda's side of ``Tracing: Active`` (the template's Globals), as Powertools' Tracer sees it:
#: ``LAMBDA_TASK_ROOT`` set and no ``POWERTOOLS_TRACE_DISABLED``.
TRACING_ON = {"LAMBDA_TASK_ROOT": str(ROOT)}

# Runs in the child: the import alone is timed (the interpreter's own start-up is not).
_CHILD = """
import importlib, json, sys, time
module, out = sys.argv[1], sys.argv[2]
cpu, wall = time.process_time(), time.perf_counter()
importlib.import_module(module)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"cpu": cpu, "wall": wall, "modules": sorted(sys.modules)}, handle)
"""


@dataclass(frozen=True)
class ColdStart:
    """One import of ``module`` in a fresh interpreter."""

    module: str
    cpu_seconds: float
    wall_seconds: float
    modules: frozenset[str]

    def loaded(self, package: str) -> bool:
        """Whether ``package`` or any module inside it was imported."""
        return any(name == package or name.startswith(f"{package}.") for name in self.modules)


def handler_module(handler: str) -> str:
    return f"functions.{handler}.app"


def cold_start_environment(*, tracing: bool = False) -> dict[str, str]:
    """The child's environment: ours (nothing of the caller's AWS or Powertools setup) on top of
    the caller's, the repository and the layer first on the path."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_", "LAMBDA_", "_X_AMZN")) and name not in ENVIRONMENT
    }
    path = os.pathsep.join([str(ROOT), str(ROOT / "shared")])
    environment = {**inherited, **ENVIRONMENT, "PYTHONPATH": path}
    if tracing:
        del environment["POWERTOOLS_TRACE_DISABLED"]
        environment.update(TRACING_ON)
    return environment


def cold_start(
    module: str,
    *,
    tracing: bool = False,
    bytecode_cache: Path | None = None,
    extra: Mapping[str, str] | None = None,
) -> ColdStart:
    """Import ``module`` (e.g. ``functions.aggregator.app`` or ``boto3``) in a new interpreter.

    With ``bytecode_cache``, compiled modules are written to and read from that directory (as
    Lambda's runtime and a pip-built layer ship ``.pyc`` files); without it the child inherits
    the caller's setting (``PYTHONDONTWRITEBYTECODE`` here: every import compiles its source).
    """
    environment = {**cold_start_environment(tracing=tracing), **(extra or {})}
    if bytecode_cache is not None:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
        environment["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cold_start.json"
        completed = subprocess.run(  # noqa: S603 - this interpreter, our own script
            [sys.executable, "-c", _CHILD, module, str(out)],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not out.exists():
            tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
            raise RuntimeError(f"importing {module} failed:\n{tail}")
        figures = json.loads(out.read_text(encoding="utf-8"))
    return ColdStart(module, figures["cpu"], figures["wall"], frozenset(figures["modules"]))
