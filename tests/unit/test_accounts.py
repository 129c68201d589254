"""Signed NATS JWTs, nkeys and the callout's answers, without a server (lesson 21)."""

from __future__ import annotations

import base64
import json
import pickle

import pytest

from edalab import (
    Account,
    AccountQuota,
    AuthCalloutService,
    Grant,
    JWTError,
    LoginRequest,
    NKey,
    Operator,
    auth_callout_config,
    decode_jwt,
    encode_jwt,
    operator_config,
)


def _part(token: str, index: int) -> dict[str, object]:
    text = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))


def test_jwt_header_and_issuer_follow_nats_jwt_v2() -> None:
    """A JWT carries nats-io/jwt's header, the issuer's public key and a jti."""
    key = NKey.create("account")
    token = encode_jwt({"sub": key.public_key, "nats": {"type": "account", "version": 2}}, key)
    assert _part(token, 0) == {"typ": "JWT", "alg": "ed25519-nkey"}
    claims = decode_jwt(token, kind="account")
    assert claims["iss"] == key.public_key and len(claims["jti"]) == 52


def test_tampered_jwt_is_refused() -> None:
    """Changing one claim after signing breaks the signature."""
    team = Account("TEAM_A")
    user = team.user("ann", publish=["a.>"])
    head, _body, sig = user.jwt.split(".")
    claims = _part(user.jwt, 1)
    claims["nats"] = {**claims["nats"], "pub": {"allow": [">"]}}  # type: ignore[dict-item]
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(JWTError, match="signature"):
        decode_jwt(f"{head}.{forged}.{sig}")
    with pytest.raises(JWTError, match="expected a account JWT"):
        decode_jwt(user.jwt, kind="account")


def test_trust_chain_issuers() -> None:
    """The operator signs accounts, accounts (or their signing keys) sign users."""
    op = Operator("ACME")
    team = Account("TEAM_A", quota=AccountQuota(streams=1, connections=2))
    account = decode_jwt(team.jwt(op), kind="account")
    assert account["iss"] == op.key.public_key and account["sub"] == team.public_key
    assert account["nats"]["limits"]["streams"] == 1
    assert account["nats"]["limits"]["conn"] == 2
    assert account["nats"]["limits"]["subs"] == -1  # unlimited is -1, never a missing 0
    signer = NKey.create("account")
    team.signing_keys.append(signer)
    ann = decode_jwt(team.user("ann", signing_key=signer).jwt, kind="user")
    assert ann["iss"] == signer.public_key
    assert ann["nats"]["issuer_account"] == team.public_key
    assert decode_jwt(team.jwt(op))["nats"]["signing_keys"] == [signer.public_key]


def test_revocation_is_in_the_next_account_jwt() -> None:
    """revoke() names the user's key with a time not before its JWT was issued."""
    op, team = Operator("ACME"), Account("TEAM_A")
    ann = team.user("ann")
    team.revoke(ann)
    revocations = decode_jwt(team.jwt(op))["nats"]["revocations"]
    assert revocations[ann.public_key] >= ann.issued_at


def test_empty_permission_list_denies_everything() -> None:
    """[] means nothing allowed (the server would read an empty allow list as no limit)."""
    user = decode_jwt(Account("T").user("u", publish=[], subscribe=None).jwt)
    assert user["nats"]["pub"] == {"deny": [">"]} and "sub" not in user["nats"]


def test_secrets_never_show() -> None:
    """Seeds and passwords stay out of reprs, strs, configs, errors and credentials' repr."""
    op, sys_acc, team = Operator("ACME"), Account("SYS"), Account("TEAM_A")
    ann = team.user("ann")
    seeds = [k.reveal_seed() for k in (op.key, sys_acc.key, team.key, ann.key)]
    assert all(s.startswith("S") for s in seeds)
    shown = " ".join(
        [
            repr(op),
            repr(team),
            str(team.key),
            repr(ann),
            repr(ann.credentials()),
            str(ann.credentials()),
            operator_config(op, sys_acc, [sys_acc.jwt(op), team.jwt(op)]),
            repr(LoginRequest("ann", "hunter22", "tok3n", "", "", "U", "N")),
        ]
    )
    for secret in [*seeds, "hunter22", "tok3n"]:
        assert secret not in shown
    with pytest.raises(JWTError) as info:
        NKey.from_seed(seeds[3][:40])
    assert seeds[3][:20] not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(TypeError):
        pickle.dumps(ann.key)


def test_credentials_carry_jwt_and_seed_for_nats_py() -> None:
    """The creds text nats-py reads holds the JWT and the seed (only there)."""
    ann = Account("T").user("ann")
    creds = ann.credentials()
    assert ann.jwt in creds.data and ann.key.reveal_seed() in creds.data


def test_callout_response_places_user_in_account() -> None:
    """An admitted login's response wraps a user JWT for the server's nkey, with audience."""
    issuer = NKey.create("account")
    service = AuthCalloutService(None, issuer, lambda r: None)  # type: ignore[arg-type]
    user_key = NKey.create("user").public_key
    request = LoginRequest("ann", "pw", "", "", "", user_key, "NSERVER")
    grant = Grant("TEAM_A", publish=["a.>"], subscribe=["a.>"])
    response = decode_jwt(service.response(request, grant), kind="authorization_response")
    assert response["sub"] == user_key and response["aud"] == "NSERVER"
    user = decode_jwt(response["nats"]["jwt"], kind="user")
    assert user["aud"] == "TEAM_A" and user["iss"] == issuer.public_key
    assert user["nats"]["pub"] == {"allow": ["a.>"]}
    refused = decode_jwt(service.response(request, None))
    assert refused["nats"]["error"] and "jwt" not in refused["nats"]
    assert service.log.decisions == [("ann", "admitted to TEAM_A"), ("ann", "refused")]


def test_callout_config_names_issuer_and_service_user() -> None:
    """The auth_callout block holds the issuer's public key, never its seed."""
    issuer = NKey.create("account")
    text = auth_callout_config(issuer, "auth", "pw", ["TEAM_A"], timeout=0.5)
    assert f'issuer: "{issuer.public_key}"' in text and "timeout: 0.5" in text
    assert issuer.reveal_seed() not in text


def test_connection_limit_error_gets_a_rerun_hint() -> None:
    """A refusal for the account's connection limit (a cell run again) says what to do."""
    from edalab import ServerUnreachableError
    from tests.internals import explain

    err = ServerUnreachableError(
        "nats://127.0.0.1:4222", "Error: nats: 'maximum account active connections exceeded'"
    )
    lines = explain(err) or []
    assert lines and lines[-1].startswith("hint: the account's connection limit is reached")
