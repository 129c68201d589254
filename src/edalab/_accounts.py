"""Operators, accounts and users as signed JWTs, and an auth callout (notebook ``21_many_teams``).

NATS's *decentralized* security is a chain of signatures, not a list of users in the
server's configuration::

    operator (self-signed; the server trusts its public key)
      └── signs account JWTs: a namespace per team, with limits and revocations
            └── the account signs user JWTs: permissions of one key pair

A JWT here is ``base64url(header) . base64url(claims) . base64url(signature)`` with the
header ``{"typ":"JWT","alg":"ed25519-nkey"}`` and an ed25519 signature by the issuer's
nkey (the layout of nats-io/jwt v2). This module writes and reads exactly what the
lesson needs, on top of ``nkeys``, rather than depending on ``nats-jwt`` (two releases,
self-described as not well tested, without the authorization request/response claims
an auth callout needs).

    >>> op = Operator("ACME")
    >>> team = Account("TEAM_A", quota=AccountQuota(streams=2))
    >>> ann = team.user("ann", publish=["a.>"], subscribe=["a.>", "_INBOX.>"])
    >>> decode_jwt(ann.jwt)["nats"]["pub"]
    {'allow': ['a.>']}
    >>> team.key  # seeds never show
    NKey(account A..., seed hidden)

An **auth callout** lets a service of yours decide each login:
:class:`AuthCalloutService` answers the server's ``$SYS.REQ.USER.AUTH`` requests with
a user JWT (a :class:`Grant`) or a refusal. Secrets (seeds, passwords) stay out of every
repr, error and log line of this module.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import nkeys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ._confidential import redact
from ._errors import EdalabError
from ._nats import UserCredentials

__all__ = [
    "AUTH_CALLOUT_SUBJECT",
    "Account",
    "AccountQuota",
    "AccountUser",
    "AuthCalloutService",
    "Grant",
    "JWTError",
    "LoginRequest",
    "NKey",
    "Operator",
    "UserCredentials",
    "auth_callout_config",
    "decode_jwt",
    "encode_jwt",
    "operator_config",
    "push_account",
]

#: Where nats-server sends each login to an auth callout (``AuthCalloutSubject``).
AUTH_CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
#: The audience of the server's authorization requests (``AuthRequestSubject``).
_REQUEST_AUDIENCE = "nats-authorization-request"
_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
_NO_LIMIT = -1

KeyKind = Literal["operator", "account", "user"]
_PREFIXES: dict[str, int] = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}
_KIND_OF_LETTER = {"O": "operator", "A": "account", "U": "user", "N": "server"}
#: Who may sign a JWT of each ``nats.type`` (nats-io/jwt v2 ``ExpectedPrefixes``).
_ISSUERS: dict[str, tuple[str, ...]] = {
    "operator": ("O",),
    "account": ("A", "O"),
    "user": ("A",),
    "authorization_request": ("N",),
    "authorization_response": ("A",),
}


class JWTError(EdalabError):
    """A JWT that is malformed, of the wrong kind, or not signed by its issuer."""


class NKey:
    """An nkey pair whose seed never shows in a repr, str or error.

    ``public_key`` (``O...`` operator, ``A...`` account, ``U...`` user) is what others
    see; :meth:`sign` uses the seed; :meth:`reveal_seed` hands it over on purpose.

        >>> key = NKey.create("user")
        >>> key.public_key.startswith("U"), "seed hidden" in repr(key)
        (True, True)
    """

    __slots__ = ("_kp", "kind", "public_key")

    def __init__(self, kp: nkeys.KeyPair) -> None:
        self._kp = kp
        self.public_key: str = kp.public_key.decode()
        self.kind = _KIND_OF_LETTER.get(self.public_key[:1], "other")

    @classmethod
    def create(cls, kind: KeyKind) -> NKey:
        """A new random key pair of ``kind``."""
        import os

        return cls(nkeys.from_seed(nkeys.encode_seed(os.urandom(32), _PREFIXES[kind])))

    @classmethod
    def from_seed(cls, seed: str) -> NKey:
        """The key pair of an existing seed (``SO...``, ``SA...``, ``SU...``)."""
        try:
            return cls(nkeys.from_seed(bytearray(seed.strip().encode())))
        except Exception as err:  # nkeys' errors may quote the input: drop the cause
            raise JWTError(f"not a valid nkey seed ({type(err).__name__})") from None

    def sign(self, data: bytes) -> bytes:
        """The ed25519 signature of ``data``."""
        return bytes(self._kp.sign(data))

    def reveal_seed(self) -> str:
        """The secret seed: for a credentials file or a client, never for printing."""
        return bytes(self._kp.seed).decode()

    def __repr__(self) -> str:
        return f"NKey({self.kind} {self.public_key[:1]}..., seed hidden)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("an NKey is not pickled (its seed would be written out)")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _go_json(value: Any) -> bytes:
    """``value`` as Go's ``json.Marshal`` writes it (UTF-8 as is; ``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def encode_jwt(claims: Mapping[str, Any], issuer: NKey) -> str:
    """Sign ``claims`` as a NATS JWT by ``issuer`` (sets ``iss``, ``iat`` and ``jti``).

    ``jti`` is nats-io/jwt's: the base32 of SHA-512/256 over the standard claims.

        >>> key = NKey.create("account")
        >>> token = encode_jwt({"sub": key.public_key, "nats": {"type": "account"}}, key)
        >>> decode_jwt(token)["iss"] == key.public_key
        True
    """
    body = dict(claims)
    body["iss"] = issuer.public_key
    body.setdefault("iat", int(time.time()))
    standard = {
        k: body[k] for k in ("aud", "exp", "iat", "iss", "name", "nbf", "sub") if body.get(k)
    }
    digest = hashlib.new("sha512_256", _go_json(standard)).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    signed = f"{_b64(_dumps(_HEADER))}.{_b64(_dumps(body))}"
    return f"{signed}.{_b64(issuer.sign(signed.encode()))}"


def _public_key_bytes(public_key: str) -> bytes:
    """The raw ed25519 key in an nkey public key (base32: prefix, 32 bytes, CRC-16)."""
    raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    if len(raw) != 35 or nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        raise ValueError("not an nkey public key")
    if _KIND_OF_LETTER.get(public_key[:1]) is None or raw[0] & 0xF8 != raw[0]:
        raise ValueError("not an operator, account, user or server key")
    return raw[1:33]


def decode_jwt(token: str, *, kind: str | None = None) -> dict[str, Any]:
    """The claims of a NATS JWT, after checking its signature by its ``iss`` key.

    As nats-io/jwt v2 does, the issuer must be a key of the kind that signs that type of
    JWT (an account JWT by an ``O`` or ``A`` key, a user JWT by an ``A`` key, an
    authorization request by a server's ``N`` key ...), and ``exp`` / ``nbf`` (unix
    seconds, when set) must hold now. ``kind`` (``"user"``, ``"account"``,
    ``"authorization_request"`` ...) must then be the claims' ``nats.type``. Raises
    :class:`JWTError` otherwise.

        >>> ann = Account("TEAM_A").user("ann", publish=["a.>"])
        >>> decode_jwt(ann.jwt, kind="user")["name"]
        'ann'
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JWTError(f"a JWT has 3 parts separated by '.', this one has {len(parts)}")
    try:
        header = json.loads(_unb64(parts[0]))
        claims: dict[str, Any] = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except ValueError as err:
        raise JWTError(f"a JWT part is not base64url JSON: {err}") from err
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JWTError("a JWT's header and claims are JSON objects")
    if not isinstance(claims.get("nats", {}), dict):
        raise JWTError("a NATS JWT's 'nats' claim is a JSON object")
    if str(header.get("alg", "")).lower() != _HEADER["alg"]:
        raise JWTError(f"unexpected JWT algorithm {header.get('alg')!r}")
    issuer = str(claims.get("iss", ""))
    try:
        VerifyKey(_public_key_bytes(issuer)).verify(f"{parts[0]}.{parts[1]}".encode(), signature)
    except (ValueError, BadSignatureError) as err:
        raise JWTError(f"the JWT's signature is not its issuer's ({issuer[:1]}...)") from err
    found = claims.get("nats", {}).get("type")
    if kind is not None and found != kind:
        raise JWTError(f"expected a {kind} JWT, got {found!r}")
    signers = _ISSUERS.get(str(found))
    if signers is not None and issuer[:1] not in signers:
        allowed = " or ".join(_KIND_OF_LETTER[letter] for letter in signers)
        raise JWTError(f"{found} JWTs are signed by {allowed} keys, not by {issuer[:1]}... keys")
    now = int(time.time())  # nats-io/jwt ClaimsData.Validate: whole seconds
    if _positive(claims.get("exp")) and now > claims["exp"]:
        raise JWTError(f"the {found} JWT expired at {claims['exp']} (now {now})")
    if _positive(claims.get("nbf")) and claims["nbf"] > now:
        raise JWTError(f"the {found} JWT is not valid before {claims['nbf']} (now {now})")
    return claims


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@dataclass(frozen=True)
class AccountQuota:
    """What one account may use; ``-1`` is no limit (nats-io/jwt ``OperatorLimits``).

    JetStream is on for the account when ``disk_storage`` or ``mem_storage`` is not 0.

        >>> AccountQuota(streams=1).claims()["streams"]
        1
    """

    connections: int = _NO_LIMIT
    subscriptions: int = _NO_LIMIT
    payload: int = _NO_LIMIT
    streams: int = _NO_LIMIT
    consumers: int = _NO_LIMIT
    disk_storage: int = _NO_LIMIT
    mem_storage: int = _NO_LIMIT

    def claims(self) -> dict[str, Any]:
        """The ``nats.limits`` object of an account JWT."""
        return {
            "subs": self.subscriptions,
            "data": _NO_LIMIT,
            "payload": self.payload,
            "imports": _NO_LIMIT,
            "exports": _NO_LIMIT,
            "wildcards": True,
            "conn": self.connections,
            "leaf": _NO_LIMIT,
            "mem_storage": self.mem_storage,
            "disk_storage": self.disk_storage,
            "streams": self.streams,
            "consumer": self.consumers,
        }


#: An account without JetStream (the system account).
NO_JETSTREAM = AccountQuota(streams=0, consumers=0, disk_storage=0, mem_storage=0)


def _permissions(publish: Sequence[str] | None, subscribe: Sequence[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, allow in (("pub", publish), ("sub", subscribe)):
        if allow is None:
            continue
        # An empty allow list means "no restriction" to the server: deny everything instead.
        out[key] = {"allow": list(allow)} if allow else {"deny": [">"]}
    return out


def user_claims(
    user: str,
    name: str,
    *,
    publish: Sequence[str] | None = None,
    subscribe: Sequence[str] | None = None,
    audience: str | None = None,
    issuer_account: str | None = None,
) -> dict[str, Any]:
    """The claims of a user JWT for public key ``user`` (``None`` permissions: unrestricted)."""
    claims: dict[str, Any] = {
        "sub": user,
        "name": name,
        "nats": {
            **_permissions(publish, subscribe),
            "subs": _NO_LIMIT,
            "data": _NO_LIMIT,
            "payload": _NO_LIMIT,
            "type": "user",
            "version": 2,
        },
    }
    if audience:
        claims["aud"] = audience
    if issuer_account:
        claims["nats"]["issuer_account"] = issuer_account
    return claims


@dataclass
class AccountUser:
    """A user issued by an account: its key pair and its signed JWT."""

    name: str
    key: NKey
    jwt: str

    def credentials(self) -> UserCredentials:
        """What a client connects with: ``connect(url, user_credentials=u.credentials())``."""
        return UserCredentials(self.name, self.jwt, self.key.public_key, self.key.reveal_seed())

    @property
    def public_key(self) -> str:
        """The user's public key (``U...``): what a revocation names."""
        return self.key.public_key

    @property
    def issued_at(self) -> int:
        """When the JWT was signed (unix seconds): revocations compare with this."""
        return int(decode_jwt(self.jwt)["iat"])


@dataclass
class Operator:
    """The root of trust: a self-signed operator JWT that the server is configured with."""

    name: str
    key: NKey = field(default_factory=lambda: NKey.create("operator"), repr=False)

    def jwt(self, system_account: Account) -> str:
        """The operator's JWT naming the system account (the server's own events live there)."""
        claims = {
            "sub": self.key.public_key,
            "name": self.name,
            "nats": {
                "system_account": system_account.public_key,
                "type": "operator",
                "version": 2,
            },
        }
        return encode_jwt(claims, self.key)


@dataclass
class Account:
    """A team's account: a namespace of its own, its quota, and the users it revoked.

    Users are issued by the account's key (or by a signing key listed in
    ``signing_keys``, so the account's own seed can stay offline).
    """

    name: str
    quota: AccountQuota = AccountQuota()
    key: NKey = field(default_factory=lambda: NKey.create("account"), repr=False)
    revocations: dict[str, int] = field(default_factory=dict)
    signing_keys: list[NKey] = field(default_factory=list, repr=False)

    @property
    def public_key(self) -> str:
        """The account's public key (``A...``): its name to the server."""
        return self.key.public_key

    def jwt(self, operator: Operator) -> str:
        """The account JWT, signed by ``operator`` (sign again after every change)."""
        nats: dict[str, Any] = {"limits": self.quota.claims(), "type": "account", "version": 2}
        if self.revocations:
            nats["revocations"] = dict(self.revocations)
        if self.signing_keys:
            nats["signing_keys"] = [k.public_key for k in self.signing_keys]
        claims = {"sub": self.public_key, "name": self.name, "nats": nats}
        return encode_jwt(claims, operator.key)

    def user(
        self,
        name: str,
        *,
        publish: Sequence[str] | None = None,
        subscribe: Sequence[str] | None = None,
        signing_key: NKey | None = None,
    ) -> AccountUser:
        """Issue a new user of this account (a fresh key pair and its JWT)."""
        key = NKey.create("user")
        claims = user_claims(
            key.public_key,
            name,
            publish=publish,
            subscribe=subscribe,
            issuer_account=self.public_key if signing_key else None,
        )
        return AccountUser(name, key, encode_jwt(claims, signing_key or self.key))

    def revoke(self, user: AccountUser, at: int | None = None) -> None:
        """Revoke every JWT of ``user`` issued at or before ``at`` (default: now).

        Takes effect when the account's new JWT reaches the server (:func:`push_account`).
        """
        self.revocations[user.public_key] = max(at or int(time.time()), user.issued_at)


def operator_config(operator: Operator, system_account: Account, accounts: Sequence[str]) -> str:
    """Server configuration for operator mode with an in-memory resolver.

    ``accounts`` are account JWTs (the system account's included), preloaded into
    ``resolver: MEMORY``; updates arrive later on
    ``$SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE`` (:func:`push_account`).

        >>> op, system, team = Operator("ACME"), Account("SYS"), Account("TEAM_A")
        >>> text = operator_config(op, system, [system.jwt(op), team.jwt(op)])
        >>> [line.split(":")[0] for line in text.splitlines() if not line[:1] in " }"]
        ['operator', 'system_account', 'resolver', 'resolver_preload']
    """
    preload = {decode_jwt(token, kind="account")["sub"]: token for token in accounts}
    return "\n".join(
        [
            f"operator: {operator.jwt(system_account)}",
            f"system_account: {system_account.public_key}",
            "resolver: MEMORY",
            f"resolver_preload: {json.dumps(preload, indent=2)}",
        ]
    )


async def push_account(nc: NATS, account_jwt: str, *, timeout: float = 2.0) -> str:
    """Send a new account JWT to the server (``nc`` is a system-account user).

    Returns the server's message: ``"jwt updated"``, or ``"jwt update skipped"`` when the
    server has not loaded that account yet (no client of it has connected; the memory
    resolver then keeps its preloaded JWT). Raises :class:`JWTError` with the server's
    error when it refuses the JWT (not signed by its operator, for one)::

        team.revoke(ann)
        await push_account(nc_sys, team.jwt(operator))   # 'jwt updated'
    """
    account = decode_jwt(account_jwt, kind="account")["sub"]
    msg = await nc.request(
        f"$SYS.REQ.ACCOUNT.{account}.CLAIMS.UPDATE", account_jwt.encode(), timeout=timeout
    )
    answer = json.loads(msg.data)
    if "error" in answer:
        raise JWTError(f"the server refused the account JWT: {answer['error']}")
    return str(answer.get("data", {}).get("message", ""))


# -- auth callout --------------------------------------------------------------------------


@dataclass(frozen=True)
class LoginRequest:
    """One login the server asks the callout about (the password stays out of the repr)."""

    user: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    client_name: str
    host: str
    user_nkey: str
    server_id: str

    @classmethod
    def from_jwt(cls, token: str) -> LoginRequest:
        """Read (and verify) the server's authorization-request JWT."""
        claims = decode_jwt(token, kind="authorization_request")
        if claims.get("aud") != _REQUEST_AUDIENCE:
            raise JWTError(f"not an authorization request (aud {claims.get('aud')!r})")
        nats = claims["nats"]
        # The server signs with its own key, whose public half is its id: a request
        # signed by any other server key is not from the server it names.
        if claims["iss"] != nats["server_id"]["id"]:
            raise JWTError("the authorization request is not signed by the server it names")
        opts = nats.get("connect_opts", {})
        info = nats.get("client_info", {})
        return cls(
            user=str(opts.get("user", "")),
            password=str(opts.get("pass", "")),
            token=str(opts.get("auth_token", "")),
            client_name=str(opts.get("name", "")),
            host=str(info.get("host", "")),
            user_nkey=str(nats["user_nkey"]),
            server_id=str(nats["server_id"]["id"]),
        )


@dataclass(frozen=True)
class Grant:
    """An admitted login: the account it lands in and its permissions.

    ``None`` for ``publish`` / ``subscribe`` means no restriction (everything the
    account holds); ``[]`` means nothing.
    """

    account: str
    publish: list[str] | None = None
    subscribe: list[str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.account, str) or not self.account:
            raise TypeError(f"Grant(account=...) is an account's name, not {self.account!r}")
        for what in ("publish", "subscribe"):
            subjects = getattr(self, what)
            # A str is a sequence too: "a.>" would become the subjects "a", ".", ">".
            if subjects is not None and (
                isinstance(subjects, str) or not all(isinstance(x, str) for x in subjects)
            ):
                raise TypeError(f"Grant({what}=...) is a list of subjects, not {subjects!r}")


Decide = Callable[[LoginRequest], "Grant | Awaitable[Grant | None] | None"]


@dataclass
class CalloutLog:
    """What the service decided: ``(user, verdict)`` pairs and the errors of ``decide``."""

    decisions: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


#: The service answering on each connection (one per connection).
_SERVICES: weakref.WeakKeyDictionary[NATS, AuthCalloutService] = weakref.WeakKeyDictionary()


class AuthCalloutService:
    """Answer nats-server's auth callout requests with ``decide(request)``.

    ``decide`` returns a :class:`Grant` (admit), ``None`` (refuse: the server closes
    the connection with ``Authorization Violation``), or raises: then the request is
    left unanswered, as a crashed service's would be, and the server refuses the login
    when its auth timeout runs out. ``issuer`` is the account key named ``issuer`` in
    the server's ``auth_callout`` block; it signs the user JWTs and the responses.

        async with AuthCalloutService(nc, issuer, decide):
            ...   # logins are decided here
    """

    def __init__(self, nc: NATS, issuer: NKey, decide: Decide) -> None:
        if issuer.kind != "account":
            # The server accepts responses and user JWTs signed by an account key only.
            raise ValueError(f"the callout's issuer is an account key (A...), not {issuer!r}")
        self.nc = nc
        self.issuer = issuer
        self.decide = decide
        self.log = CalloutLog()
        self._sub: Any = None

    async def start(self) -> Self:
        """Subscribe to ``$SYS.REQ.USER.AUTH`` (and flush, so the next login is answered).

        A service started earlier on the same connection is stopped first (a cell run
        again must not leave an old service answering beside the new one).
        """
        old = _SERVICES.get(self.nc)
        if old is not None and old is not self:
            await old.stop()
        _SERVICES[self.nc] = self
        if self._sub is not None:
            return self
        self._sub = await self.nc.subscribe(AUTH_CALLOUT_SUBJECT, cb=self._handle)
        await self.nc.flush()
        return self

    async def stop(self) -> None:
        """Stop answering: logins are refused after the server's auth timeout."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
            if self.nc.is_connected:
                await self.nc.flush()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def _handle(self, msg: Msg) -> None:
        try:
            request = LoginRequest.from_jwt(msg.data.decode())
        except (JWTError, KeyError, TypeError, UnicodeDecodeError) as err:
            self.log.errors.append(f"unreadable request: {err}")
            return
        try:
            grant = self.decide(request)
            if inspect.isawaitable(grant):
                grant = await grant
        except Exception as err:  # a broken decide: answer nothing, as a crashed service
            text = redact(f"{type(err).__name__}: {err}", [request.password, request.token])
            self.log.errors.append(f"decide raised for {request.user!r}: {text}")
            return
        if grant is not None and not isinstance(grant, Grant):
            self.log.errors.append(
                f"decide returned {type(grant).__name__} for {request.user!r}, not a Grant or None"
            )
            return
        if not msg.reply:
            self.log.errors.append(f"a request for {request.user!r} without a reply subject")
            return
        await self.nc.publish(msg.reply, self.response(request, grant).encode())

    def response(self, request: LoginRequest, grant: Grant | None) -> str:
        """The authorization-response JWT: a user JWT for ``grant``, or an error."""
        nats: dict[str, Any] = {"type": "authorization_response", "version": 2}
        if grant is None:
            nats["error"] = "not authorized"
            self.log.decisions.append((request.user, "refused"))
        else:
            user = user_claims(
                request.user_nkey,
                request.user,
                publish=grant.publish,
                subscribe=grant.subscribe,
                audience=grant.account,  # outside operator mode, the account to place the user in
            )
            nats["jwt"] = encode_jwt(user, self.issuer)
            self.log.decisions.append((request.user, f"admitted to {grant.account}"))
        claims = {"sub": request.user_nkey, "aud": request.server_id, "nats": nats}
        return encode_jwt(claims, self.issuer)


def auth_callout_config(
    issuer: NKey,
    service_user: str,
    service_password: str,
    accounts: Sequence[str],
    *,
    timeout: float = 2.0,
    jetstream: bool = True,
    service_account: str = "AUTH",
) -> str:
    """Server configuration where a callout service decides every other login.

    The service logs in as ``service_user`` in ``service_account`` (these logins skip
    the callout); ``accounts`` are where admitted users may land, with JetStream when
    ``jetstream``. ``timeout`` is the server's auth timeout in seconds: how long a login
    waits for the callout's answer before it is refused.

        >>> print(auth_callout_config(NKey.create("account"), "auth", "pw", ["TEAM_A"]))
        ... # doctest: +ELLIPSIS
        accounts {
          AUTH { users: [{"user": "auth", "password": "pw"}] }
          TEAM_A { jetstream: enabled }
        }
        authorization {
          timeout: 2
          auth_callout {
            issuer: "A..."
            auth_users: ["auth"]
            account: "AUTH"
          }
        }
    """
    user = json.dumps({"user": service_user, "password": service_password})
    lines = ["accounts {", f"  {service_account} {{ users: [{user}] }}"]
    for name in accounts:
        lines.append(f"  {name} {{ jetstream: enabled }}" if jetstream else f"  {name} {{}}")
    lines += [
        "}",
        "authorization {",
        f"  timeout: {timeout:g}",
        "  auth_callout {",
        f"    issuer: {json.dumps(issuer.public_key)}",
        f"    auth_users: {json.dumps([service_user])}",
        f"    account: {json.dumps(service_account)}",
        "  }",
        "}",
    ]
    return "\n".join(lines)
