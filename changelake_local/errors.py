"""Errors of the local runner: each carries a message fit to show a person as is."""

from __future__ import annotations


class LocalRunError(Exception):
    """The local stack could not start, deploy or run; the message says what and how to fix it."""


class TemplateError(LocalRunError):
    """template.yaml could not be translated or deployed."""


class HandlerLoadError(LocalRunError):
    """A function's handler failed at cold start (import or settings validation)."""
