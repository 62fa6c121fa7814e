"""Refusals, in Chinese and English: the one family of exceptions gridmap raises for things a user
asked that cannot be done, whatever the layer.

Every refusal carries its text in both languages (``en``, ``zh``; ``str(exc)`` is the English);
the API answers with ``detail`` (English, as clients have always read it), ``detail_en`` and
``detail_zh``, and one table in ``gridmap.api.errors`` maps each kind to its HTTP status.
A refusal is raised where the rule it enforces lives, with both texts written there.
"""

from __future__ import annotations


class Refusal(Exception):
    """Something asked that cannot be done, said in English (``en``) and Chinese (``zh``)."""

    def __init__(self, en: str, zh: str):
        super().__init__(en)
        self.en = en
        self.zh = zh

    def texts(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}

    def details(self) -> dict:
        """What an answer carries beside the texts (the findings of a refused import ...)."""
        return {}


class NotFound(Refusal, LookupError):
    """No such thing (territory, plan, unit, grid, incident ...)."""


class Invalid(Refusal, ValueError):
    """The request cannot be applied as asked (an edit against the rules, a bad value)."""


class StateConflict(Refusal):
    """The thing is not in a state that allows this (editing a published plan, publishing history)."""


class Forbidden(Refusal, PermissionError):
    """The caller may not do this here (outside their planning area, their grids ...)."""


class Unauthenticated(Refusal):
    """Nobody is signed in (or the sign-in has expired) and this needs someone."""


class TooManyRequests(Refusal):
    """Too many attempts from this address or at this account: try again after ``retry_after``
    seconds (failed sign-ins, public submissions)."""

    def __init__(self, en: str, zh: str, *, retry_after: int):
        super().__init__(en, zh)
        self.retry_after = max(1, int(retry_after))

    def details(self) -> dict:
        return {"retry_after": self.retry_after}


def texts(exc: BaseException) -> dict[str, str]:
    """An exception's text in both languages: a refusal's own, else the message twice (errors
    that are not refusals are not meant for users and have no translation)."""
    if isinstance(exc, Refusal):
        return exc.texts()
    message = str(exc)
    return {"en": message, "zh": message}


__all__ = ["Refusal", "NotFound", "Invalid", "StateConflict", "Forbidden", "Unauthenticated", "TooManyRequests",
           "texts"]
