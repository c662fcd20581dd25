from __future__ import annotations

from pathlib import Path

import pytest

from services.api.auth import Tokens, hash_password, verify_password
from services.api.guard import _hostname
from shared.config import Settings
from shared.db.models import User
from shared.errors import ErrorCode, PortsideError
from shared.secrets import MASK, Cipher, compose_passwords, home_key, mask_compose, redact, unmask_compose


def test_redact_hides_secret_values_and_credential_shapes() -> None:
    text = (
        "key AKIAIOSFODNN7EXAMPLE url postgresql://app:hunter22@db:5432/app auth Bearer abc.def.ghijkl "
        "value my-secret-value\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----"
    )
    out = redact(text, ["my-secret-value"])
    for leaked in ("AKIAIOSFODNN7EXAMPLE", "hunter22", "abc.def.ghijkl", "my-secret-value", "MIIE"):
        assert leaked not in out
    assert "postgresql://app:********@db:5432/app" in out


def test_redact_leaves_ordinary_text_and_very_short_values_alone() -> None:
    assert redact("listening on 0.0.0.0:8000", ["abc"]) == "listening on 0.0.0.0:8000"


def test_masked_compose_comes_back_with_the_saved_passwords() -> None:
    stored = (
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: s3cr3tpw\n  app:\n    environment:\n"
        "      DATABASE_URL: postgresql://app:s3cr3tpw@db:5432/app\n"
    )
    assert compose_passwords(stored) == ["s3cr3tpw"]
    masked = mask_compose(stored)
    assert "s3cr3tpw" not in masked and MASK in masked
    assert unmask_compose(masked, stored) == stored
    with pytest.raises(ValueError, match="line 4"):
        unmask_compose(masked.replace("POSTGRES_PASSWORD", "POSTGRES_PASS_RENAMED"), stored)


def test_home_key_is_created_once_with_owner_only_mode(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    first = home_key(settings, "jwt")
    assert home_key(settings, "jwt") == first
    assert (tmp_path / "keys" / "jwt").stat().st_mode & 0o777 == 0o600
    cipher = Cipher(settings)
    assert cipher.decrypt(cipher.encrypt("value")) == "value"


def test_expired_access_token_answers_token_expired(tmp_path: Path) -> None:
    user = User(id=7, email="a@b.c", password_hash="", role="member")
    assert Tokens(Settings(home=tmp_path)).user_id(Tokens(Settings(home=tmp_path)).access_token(user)) == 7
    expired = Tokens(Settings(home=tmp_path, access_token_minutes=-1)).access_token(user)
    with pytest.raises(PortsideError) as caught:
        Tokens(Settings(home=tmp_path)).user_id(expired)
    assert caught.value.code == ErrorCode.TOKEN_EXPIRED
    with pytest.raises(PortsideError) as forged:
        Tokens(Settings(home=tmp_path / "other")).user_id(Tokens(Settings(home=tmp_path)).access_token(user))
    assert forged.value.code == ErrorCode.UNAUTHORIZED


def test_password_hashes_are_argon2_and_verify() -> None:
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "correct horse") and not verify_password(hashed, "wrong")


@pytest.mark.parametrize(
    ("host", "name"),
    [("localhost:8080", "localhost"), ("[::1]:8080", "::1"), ("::1", "::1"), ("example.com", "example.com")],
)
def test_host_header_names_the_host_without_its_port(host: str, name: str) -> None:
    assert _hostname(host) == name
