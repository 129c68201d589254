"""What decode_jwt and the callout refuse: wrong signer kinds, expired or early JWTs (lesson 21)."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import time

import nkeys
import pytest

from edalab import (
    Account,
    AuthCalloutService,
    Grant,
    JWTError,
    LoginRequest,
    NKey,
    decode_jwt,
    encode_jwt,
)


def _server_key() -> NKey:
    return NKey(nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_SERVER)))


def _request(signer: NKey, server_id: str) -> str:
    claims = {
        "sub": NKey.create("account").public_key,
        "aud": "nats-authorization-request",
        "exp": int(time.time()) + 5,
        "nats": {
            "type": "authorization_request",
            "version": 2,
            "user_nkey": NKey.create("user").public_key,
            "server_id": {"id": server_id, "name": "n"},
            "connect_opts": {"user": "ann", "pass": "pw"},
        },
    }
    return encode_jwt(claims, signer)


def test_a_user_jwt_signed_by_a_user_key_is_refused() -> None:
    """Only an account key signs user JWTs (nats-io/jwt ExpectedPrefixes): a U key does not."""
    user = NKey.create("user")
    token = encode_jwt({"sub": user.public_key, "nats": {"type": "user", "version": 2}}, user)
    with pytest.raises(JWTError, match="signed by account keys"):
        decode_jwt(token, kind="user")


def test_an_account_jwt_signed_by_a_user_key_is_refused() -> None:
    """An account JWT is signed by an operator (or the account itself), never a user key."""
    team = Account("TEAM_A")
    token = encode_jwt(
        {"sub": team.public_key, "nats": {"type": "account", "version": 2}}, NKey.create("user")
    )
    with pytest.raises(JWTError, match="operator"):
        decode_jwt(token, kind="account")


@pytest.mark.parametrize(
    ("field", "offset", "words"), [("exp", -10, "expired"), ("nbf", 60, "not valid before")]
)
def test_expired_and_early_jwts_are_refused(field: str, offset: int, words: str) -> None:
    """A JWT past its ``exp`` or before its ``nbf`` does not decode (ClaimsData.Validate)."""
    key = NKey.create("account")
    claims = {"sub": key.public_key, field: int(time.time()) + offset, "nats": {"type": "account"}}
    with pytest.raises(JWTError, match=words):
        decode_jwt(encode_jwt(claims, key))


def test_a_request_not_signed_by_a_server_is_refused() -> None:
    """A client of the callout's account cannot forge a login request with an account key."""
    forger = NKey.create("account")
    with pytest.raises(JWTError, match="server keys"):
        LoginRequest.from_jwt(_request(forger, forger.public_key))


def test_a_request_signed_by_another_server_is_refused() -> None:
    """The request's signer must be the server it names in ``server_id``."""
    with pytest.raises(JWTError, match="not signed by the server it names"):
        LoginRequest.from_jwt(_request(_server_key(), _server_key().public_key))


def test_a_server_signed_request_reads() -> None:
    """The server's own request (signed by the key its id names) is read, password hidden."""
    server = _server_key()
    request = LoginRequest.from_jwt(_request(server, server.public_key))
    assert request.user == "ann" and request.password == "pw" and "pw" not in repr(request)


def test_callout_issuer_must_be_an_account_key() -> None:
    """The server takes callout answers signed by an account key only: refuse others early."""
    with pytest.raises(ValueError, match="account key"):
        AuthCalloutService(None, NKey.create("user"), lambda r: None)  # type: ignore[arg-type]


def test_jti_hashes_the_claims_as_go_writes_them() -> None:
    """jti is SHA-512/256 over Go's JSON of the standard claims: UTF-8 raw, & < > escaped."""
    key = NKey.create("account")
    token = encode_jwt({"sub": key.public_key, "name": "é&<", "iat": 7, "nats": {}}, key)
    go = f'{{"iat":7,"iss":"{key.public_key}","name":"é\\u0026\\u003c","sub":"{key.public_key}"}}'
    digest = hashlib.new("sha512_256", go.encode()).digest()
    assert decode_jwt(token)["jti"] == base64.b32encode(digest).decode().rstrip("=")


@pytest.mark.parametrize(
    "kwargs",
    [{"publish": "team.a.>"}, {"subscribe": "team.a.>"}, {"publish": [1]}, {"account": ""}],
)
def test_a_grant_takes_lists_of_subjects(kwargs: dict[str, object]) -> None:
    """Grant(publish="a.>") would allow the subjects "a", ".", ">": refused when made."""
    with pytest.raises(TypeError, match="Grant"):
        Grant(**{"account": "TEAM_A", **kwargs})  # type: ignore[arg-type]


def test_a_float_expiry_is_checked_too() -> None:
    """An ``exp`` written as a float is still a time that has passed."""
    key = NKey.create("account")
    claims = {"sub": key.public_key, "exp": time.time() - 10, "nats": {"type": "account"}}
    with pytest.raises(JWTError, match="expired"):
        decode_jwt(encode_jwt(claims, key))


def test_credentials_are_not_pickled() -> None:
    """Pickling a user's credentials (a UserString holding the seed) is refused, as for NKey."""
    ann = Account("TEAM_A").user("ann")
    with pytest.raises(TypeError, match="seed"):
        pickle.dumps(ann.credentials())
    assert ann.key.reveal_seed() not in repr(ann.credentials()) + str(ann.credentials())
