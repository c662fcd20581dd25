"""Request bodies refuse text PostgreSQL cannot store (found by Schemathesis: a NUL in a token name was a 500)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from services.api import schemas


def request_models() -> list[type[BaseModel]]:
    return [m for m in vars(schemas).values()
            if isinstance(m, type) and issubclass(m, schemas.RequestBody) and m is not schemas.RequestBody]


def test_every_create_update_and_auth_body_is_a_request_body() -> None:
    names = {m.__name__ for m in request_models()}
    assert {"RepositoryCreate", "FilesUpdate", "ApiTokenCreate", "LoginRequest", "EnvUpdate"} <= names


@pytest.mark.parametrize("value", ["a\x00b", ["ok", "\x00"], {"k\x00": "v"}])
def test_a_nul_anywhere_in_a_body_is_a_validation_error(value: object) -> None:
    with pytest.raises(ValidationError, match="NUL"):
        schemas.ApiTokenCreate.model_validate({"name": value})
    with pytest.raises(ValidationError, match="NUL"):
        schemas.EnvUpdate.model_validate({"variables": [{"key": "A", "value": value}]})
