"""Running a function of the template in-process, the way Lambda runs it.

Loading is a cold start: ``<CodeUri>/app.py`` is imported afresh under a name of its own with the
function's environment applied (the handlers validate their settings at import). One lock per
function serialises its invocations, as one Lambda execution environment does. What Lambda
enforces and this does not: the timeout (reported through the context only) and memory size.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from changelake_local.deployed_stack import FunctionSpec
from changelake_local.errors import HandlerLoadError

#: Execution environments of one function (``ExecutionEnvironments``). Lambda starts one per
#: concurrent invocation; here they share one process and its GIL on a machine of a few cores, so
#: more add nothing but waiting. 4 lets a Map with MaxConcurrency 4 (``make run`` with 4 pieces)
#: run all its pieces at once; above it invocations wait for a free one. Cost measured for
#: template.yaml's 5 functions: 20 environments started in 0.01 s and 0.25 MB more peak RSS once
#: their dependencies were imported (the thin handler modules are all that is imported again).
MAX_ENVIRONMENTS = 4
_ENVIRONMENT_LOCK = threading.RLock()  # re-entrant: a load inside an applied environment


@contextmanager
def applied_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` set in ``os.environ`` for the duration, then the previous values restored."""
    with _ENVIRONMENT_LOCK:
        previous = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class LambdaContext:
    """The ``context`` Lambda passes: names, request ID and the time left before the timeout."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float
    function_version: str = "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One function of the deployed stack, loaded in this process."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        extra_environment: Mapping[str, str] | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        self.spec = spec
        self._environment = {**spec.environment, **(extra_environment or {})}
        self._log_stream = log_stream
        self._handler: Callable[[Any, Any], Any] | None = None
        self._lock = threading.Lock()
        self.invocations = 0
        self.errors = 0
        self.last_error: str | None = None

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    def load(self) -> None:
        """Cold start; a failure raises HandlerLoadError with the function's own message."""
        module_file, _, attribute = self.spec.handler.rpartition(".")
        path = self.spec.code_dir / f"{module_file.replace('.', '/')}.py"
        if not path.is_file():
            raise HandlerLoadError(f"{self.logical_id}: handler file {path} does not exist")
        name = f"changelake_local_functions.{self.logical_id}.{uuid.uuid4().hex}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise HandlerLoadError(f"{self.logical_id}: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        with applied_environment(self._environment):
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise HandlerLoadError(
                    f"{self.logical_id} failed at cold start ({_relative(path)}): {type(exc).__name__}: {exc}"
                ) from exc
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise HandlerLoadError(f"{self.logical_id}: {_relative(path)} has no callable {attribute!r}")
        self._redirect_logs(module)
        self._handler = handler

    def _redirect_logs(self, module: ModuleType) -> None:
        """Send the function's log lines (Powertools logs to stdout) to the run's log file."""
        if self._log_stream is None:
            return
        service = self._environment.get("POWERTOOLS_SERVICE_NAME", "service_undefined")
        for handler in logging.getLogger(service).handlers:
            if not isinstance(handler, logging.StreamHandler) or isinstance(handler, logging.FileHandler):
                continue
            if getattr(handler.stream, "closed", False):
                # a previous run's log file in this process (the logger is the process's), closed when
                # that run ended: setStream would flush it and fail
                handler.stream = self._log_stream
            else:
                handler.setStream(self._log_stream)

    def another_environment(self) -> LocalFunction:
        """A new execution environment of this function (same spec, environment, log stream), not loaded."""
        return LocalFunction(self.spec, extra_environment=self._environment, log_stream=self._log_stream)

    def invoke(self, event: Any) -> Any:
        """Run the handler once; its exception propagates (a function error)."""
        if self._handler is None:
            self.load()
        assert self._handler is not None
        context = LambdaContext(
            function_name=self.spec.name,
            invoked_function_arn=self.spec.arn,
            memory_limit_in_mb=self.spec.memory_mb,
            aws_request_id=str(uuid.uuid4()),
            log_group_name=f"/aws/lambda/{self.spec.name}",
            log_stream_name="local",
            deadline=time.monotonic() + self.spec.timeout,
        )
        with self._lock:
            self.invocations += 1
            try:
                return self._handler(event, context)
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                raise


class ExecutionEnvironments:
    """``limit`` execution environments of one function, ``first`` among them, all started (cold)
    here, in the caller's thread: a cold start applies the function's environment, which waits for
    the process environment's lock that a run holds while it lasts. An invocation takes an idle
    environment or waits for one (where Lambda would start another, up to its concurrency limit)."""

    def __init__(self, first: LocalFunction, *, limit: int = MAX_ENVIRONMENTS) -> None:
        if limit < 1:
            raise ValueError(f"a function needs at least one execution environment, not {limit}")
        self.environments = [first] + [first.another_environment() for _ in range(limit - 1)]
        for environment in self.environments:
            environment.load()
        self._idle = list(self.environments)
        self._available = threading.Condition()

    @property
    def errors(self) -> int:
        return sum(environment.errors for environment in self.environments)

    @property
    def invocations(self) -> int:
        return sum(environment.invocations for environment in self.environments)

    @property
    def last_error(self) -> str | None:
        return next((e.last_error for e in reversed(self.environments) if e.last_error), None)

    def invoke(self, event: Any) -> Any:
        """Run the handler once in an idle environment; its exception propagates (a function error)."""
        with self._available:
            while not self._idle:
                self._available.wait()
            environment = self._idle.pop()
        try:
            return environment.invoke(event)
        finally:
            with self._available:
                self._idle.append(environment)
                self._available.notify()


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
