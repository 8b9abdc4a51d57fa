"""User-facing errors: bad input that the entry points report as one line and a non-zero exit."""
from __future__ import annotations

import functools
import sys
from typing import Callable, Sequence, TypeVar

F = TypeVar("F", bound=Callable)


class LightningIBAError(Exception):
    """Bad input or environment (unknown dataset, layer out of range, no network, ...).

    Entry points print the message alone (no traceback) and exit with status 2.
    """


class UnknownNameError(LightningIBAError, KeyError):
    """A name (dataset, method, source, estimator) that is not among the valid ones."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind, self.name, self.valid = kind, name, list(valid)
        super().__init__(f"unknown {kind} {name!r}; valid: {', '.join(self.valid)}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def exit_on_user_error(main: F) -> F:
    """Decorate an entry point so that a LightningIBAError ends it with one line and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except LightningIBAError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]


def check_choice(kind: str, value: str, valid: Sequence[str]) -> None:
    """Raise UnknownNameError unless `value` is one of `valid`."""
    if value not in valid:
        raise UnknownNameError(kind, value, list(valid))
