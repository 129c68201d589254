"""The user.created payload at versions 1 to 3, shared by the versioning tests."""

from __future__ import annotations

from pydantic import BaseModel


class V1(BaseModel):
    user_id: str
    name: str


class V2(BaseModel):
    user_id: str
    first_name: str
    last_name: str


class V3(BaseModel):
    user_id: str
    first_name: str
    last_name: str
    email: str | None = None
