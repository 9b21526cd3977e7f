"""The error tree of the order pipeline.

    OmsError
    ├── ConnectorError            raised at the edge, translated from HTTP and platform codes
    │   ├── TokenExpired          retryable once the token is refreshed
    │   ├── RateLimited           retryable after `retry_after` seconds
    │   ├── Unavailable           retryable: timeouts, 5xx, "service busy" codes
    │   ├── Rejected              permanent: bad signature, bad parameters, refused write
    │   └── TokenRefreshFailed    a token could not be renewed; names the next step
    ├── MappingError              a platform payload that cannot become an order
    ├── IllegalTransition         an order status change the transition table forbids
    └── InsufficientStock         carries the lines that could not be reserved

Every connector error says whether a retry can help (`retryable`), so task retry
policies decide from the exception alone.
"""

from __future__ import annotations

from dataclasses import dataclass


class OmsError(Exception):
    """Root of every error the pipeline raises on purpose."""


class ConnectorError(OmsError):
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        code: str | int | None = None,
        body: object = None,
    ) -> None:
        super().__init__(message)
        self.platform = platform
        self.code = code
        self.body = body

    def __str__(self) -> str:
        prefix = f"[{self.platform}] " if self.platform else ""
        suffix = f" (code {self.code})" if self.code is not None else ""
        return f"{prefix}{self.args[0]}{suffix}"


class TokenExpired(ConnectorError):
    retryable = True


class RateLimited(ConnectorError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unavailable(ConnectorError):
    retryable = True


class Rejected(ConnectorError):
    retryable = False


class TokenRefreshFailed(ConnectorError):
    """A shop's token could not be renewed; carries what the person on call should do.

    Not retryable by the task policy: the refresh itself already ran under its own
    rules, and the next scheduled refresh tries again.
    """

    retryable = False

    def __init__(self, message: str, *, next_step: str, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.next_step = next_step


class MappingError(OmsError):
    """A payload that cannot be turned into an order; carries every reason found."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class IllegalTransition(OmsError):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"an order cannot go from {current} to {target}")
        self.current = current
        self.target = target


@dataclass(frozen=True)
class ShortLine:
    sku: str
    wanted: int
    available: int


class InsufficientStock(OmsError):
    def __init__(self, items: list[ShortLine]) -> None:
        skus = ", ".join(f"{i.sku} (wanted {i.wanted}, available {i.available})" for i in items)
        super().__init__(f"not enough stock for {skus}")
        self.items = items


def is_retryable(error: BaseException) -> bool:
    """True for errors a later attempt may cure; tasks use it as their retry condition."""
    return isinstance(error, ConnectorError) and error.retryable
