"""The one error body of every API error: ``{"error": {"code": "...", "message": "..."}}``."""

from pydantic import BaseModel

__all__ = ["ErrorBody", "ErrorDetail"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail
