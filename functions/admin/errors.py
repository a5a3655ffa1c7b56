"""One error type for every refusal, rendered per surface (v1, v2, console)."""

from __future__ import annotations

from collections.abc import Sequence


class ApiError(Exception):
    """A request refused with ``status``; ``field`` names the input at fault."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        problems: Sequence[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or {
            400: "invalid",
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            409: "conflict",
            412: "precondition_failed",
            415: "unsupported_media_type",
            428: "precondition_required",
            429: "too_many_requests",
            503: "unavailable",
        }.get(status, "error")
        self.problems = list(problems)
        self.headers = headers or {}


def bad(field: str, message: str) -> ApiError:
    """400 naming the field: ``field: message``."""
    return ApiError(400, f"{field}: {message}", field=field)
