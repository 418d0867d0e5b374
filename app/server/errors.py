"""Errors in OpenAI's JSON shape: ``{"error": {"message", "type", "code"}}``."""

from __future__ import annotations

from starlette.responses import JSONResponse

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    503: "server_busy",
}


class ApiError(Exception):
    """A request the server answers with an error status and OpenAI's error body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        """This error as the HTTP response OpenAI's clients understand."""
        return JSONResponse(
            error_body(self.message, _TYPES.get(self.status, "server_error"), self.code),
            status_code=self.status,
            headers=self.headers,
        )


def error_body(message: str, type_: str, code: str | None) -> dict[str, object]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}
