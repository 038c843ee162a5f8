"""Resolving CloudFormation intrinsic functions against a deployed stack.

Enough of CloudFormation's language for what the runner reads from the translated template
(function environments, event source mappings, schedules): Ref, Fn::GetAtt, Fn::Sub, Fn::If,
Fn::Join, Fn::Select, Fn::Split, Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition and AWS::NoValue.
A Ref to a ``CommaDelimitedList`` parameter is a list, as in CloudFormation ("" is ``[""]``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from changelake_local.errors import TemplateError

_NO_VALUE = object()
_SUB_VARIABLE = re.compile(r"\$\{([^}]+)\}")

#: (logical_id, attribute) -> value, for resources whose attributes need the live endpoint.
AttributeLookup = Callable[[str, str], str]


class Resolver:
    """Evaluates intrinsics with the stack's parameters, physical IDs and attributes."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, str],
        physical_ids: Mapping[str, str],
        conditions: Mapping[str, Any],
        attribute: AttributeLookup,
        pseudo: Mapping[str, str],
        list_parameters: frozenset[str] = frozenset(),
    ) -> None:
        self._parameters = parameters
        self._list_parameters = list_parameters
        self._physical = physical_ids
        self._conditions_source = conditions
        self._conditions: dict[str, bool] = {}
        self._attribute = attribute
        self._pseudo = pseudo

    def resolve(self, value: Any) -> Any:
        result = self._resolve(value)
        return None if result is _NO_VALUE else result

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._conditions_source:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._resolve(self._conditions_source[name]))
        return self._conditions[name]

    def _resolve(self, value: Any) -> Any:  # noqa: PLR0911, PLR0912 - one branch per intrinsic
        if isinstance(value, list):
            items = [self._resolve(item) for item in value]
            return [item for item in items if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Fn::GetAtt":
                logical, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
                return self._attribute(logical, attribute)
            if name == "Fn::Sub":
                return self._sub(argument)
            if name == "Fn::If":
                condition, when_true, when_false = argument
                return self._resolve(when_true if self.condition(condition) else when_false)
            if name == "Fn::Join":
                separator, items = argument
                return separator.join(str(item) for item in self._resolve(items))
            if name == "Fn::Split":
                separator, text = argument
                return str(self._resolve(text)).split(separator)
            if name == "Fn::Select":
                index, items = argument
                return self._resolve(items)[int(self._resolve(index))]
            if name == "Fn::Equals":
                left, right = (self._resolve(item) for item in argument)
                return str(left) == str(right)
            if name == "Fn::Not":
                return not self._resolve(argument[0])
            if name == "Fn::And":
                return all(self._resolve(item) for item in argument)
            if name == "Fn::Or":
                return any(self._resolve(item) for item in argument)
            if name == "Condition":
                return self.condition(argument)
            if name.startswith("Fn::"):
                raise TemplateError(f"the local runner cannot evaluate {name}")
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not _NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._list_parameters:
            return self._parameters[name].split(",")
        if name in self._parameters:
            return self._parameters[name]
        if name in self._physical:
            return self._physical[name]
        raise TemplateError(f"Ref to {name!r}, which is neither a parameter nor a deployed resource")

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {key: self._resolve(item) for key, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return str(self._attribute(logical, attribute))
            return str(self._ref(name))

        return _SUB_VARIABLE.sub(replace, text)
