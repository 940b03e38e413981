"""Domain errors of the board. Each carries a message fit to show the user as it is."""

from __future__ import annotations


class BoardError(Exception):
    """A refused board action; ``str(error)`` is the user-facing message."""


class WipLimitReached(BoardError):
    def __init__(self, *, column_name: str, count: int, limit: int) -> None:
        self.column_name = column_name
        self.count = count
        self.limit = limit
        super().__init__(f"{column_name} is at its WIP limit, {count}/{limit}")


class StaleBoard(BoardError):
    """The client acted on a view someone else has changed meanwhile."""

    def __init__(
        self,
        message: str = "Someone else changed this card meanwhile; the board "
        "now shows its current state.",
    ) -> None:
        super().__init__(message)


class ControlPointRequired(BoardError):
    pass


class CriteriaNotMet(BoardError):
    pass


class InvalidMove(BoardError):
    pass


class PermissionRefused(BoardError):
    pass


class BoardBusy(BoardError):
    def __init__(self) -> None:
        super().__init__("The board is busy right now; nothing changed, please try again.")
