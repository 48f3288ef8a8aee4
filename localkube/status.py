"""metav1.Status answers, as kube-apiserver writes them."""

from __future__ import annotations

from typing import Any


class StatusError(Exception):
    """An API error answer: HTTP status, Status.reason, message and optional details."""

    def __init__(self, code: int, reason: str, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            status["details"] = self.details
        return status


def not_found(resource: str, name: str) -> StatusError:
    return StatusError(404, "NotFound", f'{resource} "{name}" not found', details={"name": name, "kind": resource})


def already_exists(resource: str, name: str) -> StatusError:
    return StatusError(
        409, "AlreadyExists", f'{resource} "{name}" already exists', details={"name": name, "kind": resource}
    )


def conflict(resource: str, name: str) -> StatusError:
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        details={"name": name, "kind": resource},
    )


def invalid(kind: str, resource: str, name: str, field: str, detail: str) -> StatusError:
    return StatusError(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: {field}: {detail}',
        details={"name": name, "kind": resource, "causes": [{"reason": "FieldValueInvalid", "field": field}]},
    )


def method_not_allowed() -> StatusError:
    return StatusError(405, "MethodNotAllowed", "the server does not allow this method")


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def reason_for(code: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }.get(code, "Unknown")
