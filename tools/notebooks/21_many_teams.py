# %% [markdown]
# # 21 · Many teams on one NATS
#
# **About 40 minutes.** Needs 12 Security (users and permissions), 13 Clustering
# (servers of a lesson's own). One notebook at a time; when in doubt, Restart Kernel and
# Run All (the *Kernel* menu).
#
# **Learning goals**
#
# - read the chain of trust of *decentralized* security: an operator signs accounts, an
#   account signs its users, and the server checks signatures instead of a user list;
# - give each team an **account**: its own subjects and its own JetStream, with limits
#   (streams, storage, connections) the server enforces;
# - load accounts from a **resolver**, push a changed account to the running server, and
#   **revoke** a user who is connected;
# - write an **auth callout** in Python that decides logins from an outside directory,
#   and see what the server does when that service is down.
#
# > **From NATS Streaming.** STAN had no accounts: the streaming server was itself one
# > NATS client, in one account, and every client of a cluster id could use every
# > channel. Asked how to serve several tenants (nats-streaming-server issue 1043), its
# > maintainer answered that STAN predates NATS 2.0 accounts and does not integrate with
# > them: server and clients must share one account. Separate teams meant separate
# > streaming servers. With JetStream each account has a JetStream of its own: streams,
# > consumers and limits per account, on one server.
#
# This lesson starts two servers of its own: one trusting an operator, one asking a
# callout.

# %% [markdown]
# ## The chain of trust
#
# Lesson 12 listed users in the server's configuration. Here the server knows one public
# key, the operator's, and checks signatures:
#
# ```
#  operator ACME            (self-signed JWT; the server is configured with it)
#     │ signs
#     ├── account SYS       (the server's own events and requests)
#     ├── account TEAM_A    (limits, revocations, signing keys)
#     │      │ signs
#     │      └── user ann   (permissions; her client proves she holds the key)
#     └── account TEAM_B
#            └── user bob
# ```
#
# Each is an **nkey** pair (an ed25519 key; the public key starts with `O`, `A` or `U`)
# and a **JWT** naming its public key, signed by the one above. A team lead with the
# account's key issues users without touching the server. `edalab.NKey` keeps the secret
# seed out of every repr:

# %%
from edalab import Account, AccountQuota, NKey, Operator

key = NKey.create("user")
key, key.public_key[:1]

# %% [markdown]
# An operator, the system account (no JetStream), team A (JetStream with at most one
# stream, 1 MB on disk, two connections) and team B (no JetStream at all):

# %%
NONE = AccountQuota(streams=0, consumers=0, disk_storage=0, mem_storage=0)
acme = Operator("ACME")
system = Account("SYS", quota=NONE)
team_a = Account("TEAM_A", quota=AccountQuota(connections=2, streams=1, disk_storage=1_000_000))
team_b = Account("TEAM_B", quota=NONE)
team_a

# %% [markdown]
# ## What a JWT is
#
# Three base64url parts joined by dots: a header, the claims, and the issuer's
# signature over the first two. The layout is nats-io/jwt's (v2). edalab writes it with
# the `nkeys` package (what nats-py signs nkey logins with) rather than `nats-jwt`: that
# package has two releases, calls itself not well tested, and lacks the authorization
# claims a callout needs, while signing and checking a JWT takes a few dozen lines. The
# raw header:

# %%
import base64
import json

token = team_a.jwt(acme)
head, body, signature = token.split(".")
json.loads(base64.urlsafe_b64decode(head + "=="))

# %% [markdown]
# `decode_jwt` checks the signature against the `iss` key before it returns the claims:
# the operator issued this account JWT, about team A's key, with team A's limits
# (`-1` is no limit):

# %%
from edalab import decode_jwt

claims = decode_jwt(token, kind="account")
limits = claims["nats"]["limits"]
(
    claims["iss"] == acme.key.public_key,
    claims["sub"] == team_a.public_key,
    {k: limits[k] for k in ("conn", "streams", "disk_storage", "mem_storage")},
)

# %% [markdown]
# ## A server that trusts the operator
#
# `operator_config` writes the operator's JWT, the system account and a **resolver**:
# where the server finds account JWTs. `resolver: MEMORY` with `resolver_preload` keeps
# them in the server's memory, which is enough on one server (production clusters use
# the `full` resolver, `resolver { type: full, dir: ... }`, which stores them and shares
# updates between servers). No user appears in the configuration:

# %%
from edalab import operator_config

config = operator_config(acme, system, [system.jwt(acme), team_a.jwt(acme), team_b.jwt(acme)])
[line.split(":")[0] for line in config.splitlines() if not line.startswith((" ", "}"))]

# %%
from edalab.course import lesson_server

srv = lesson_server("21", config=config)

# %% [markdown]
# Team A issues ann, team B issues bob. A client connects with a **credentials** text:
# the user JWT and the seed that proves the key is hers (nats-py signs the server's
# nonce with it; the seed never travels). Its repr hides the seed too:

# %%
from edalab import connect

ann = team_a.user("ann")
bob = team_b.user("bob")
ann.credentials()

# %%
nc_ann = await connect(srv.url, user_credentials=ann.credentials())
nc_bob = await connect(srv.url, user_credentials=bob.credentials())
nc_ann.is_connected, nc_bob.is_connected

# %% [markdown]
# ## An account is a namespace
#
# Both teams use the subject `work.plan`. Ann listens; bob publishes; nothing crosses:

# %%
import nats

inbox = await nc_ann.subscribe("work.>")
await nc_ann.flush()
await nc_bob.publish("work.plan", b"team b's plan")
await nc_bob.flush()
try:
    await inbox.next_msg(timeout=0.5)
except nats.errors.TimeoutError:
    print("ann received nothing from team B")

# %% [markdown]
# ## Account limits, enforced
#
# Team A's JetStream takes one stream:

# %%
from edalab import ensure_stream

js_a = nc_ann.jetstream()
await ensure_stream(js_a, "TEAM_A_WORK", ["work.>"])
(await js_a.account_info()).streams

# %% [markdown]
# A second is refused by the server (error code 10027):

# %% tags=["raises-exception"]
await js_a.add_stream(name="TEAM_A_MORE", subjects=["more.>"])

# %% [markdown]
# Storage: a stream may not reserve more than the account's 1 MB (10047):

# %% tags=["raises-exception"]
await js_a.update_stream(name="TEAM_A_WORK", subjects=["work.>"], max_bytes=2_000_000)

# %% [markdown]
# Team B has no JetStream at all (10039):

# %% tags=["raises-exception"]
await nc_bob.jetstream().account_info()

# %% [markdown]
# Connections: ann holds one of team A's two. Her laptop, a second user, takes the other
# (we keep an eye on when it closes); a third is refused when it logs in (raw nats-py
# shows the server's words):

# %%
import asyncio

laptop_closed = asyncio.Event()


async def on_closed():
    laptop_closed.set()


laptop = team_a.user("ann-laptop")
nc_laptop = await connect(srv.url, user_credentials=laptop.credentials(), closed_cb=on_closed)
nc_laptop.is_connected


# %% tags=["raises-exception"]
async def quiet(err):  # nats-py would print the refusal to stderr too
    pass


await nats.connect(
    srv.url,
    user_credentials=team_a.user("ann-phone").credentials(),
    allow_reconnect=False,
    error_cb=quiet,
)

# %% [markdown]
# ## Revoking a connected user
#
# Ann's laptop is stolen. Team A revokes that user's key: the account's JWT gains
# `revocations: {<user key>: <time>}` (every JWT of that key issued at or before that
# time is void). The new account JWT must reach the server: a system-account user sends
# it to `$SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE`, which every resolver listens on (the
# `full` resolver also takes `$SYS.REQ.CLAIMS.UPDATE`, reading the account from the
# JWT). `push_account` does that and returns the server's answer:

# %%
from edalab import push_account

nc_sys = await connect(srv.url, user_credentials=system.user("admin").credentials())
team_a.revoke(laptop)
await push_account(nc_sys, team_a.jwt(acme))

# %% [markdown]
# The server answers `jwt update skipped` for an account it has not loaded yet (no
# client of it has connected): the JWT is dropped, and a memory resolver goes on
# serving the one it was preloaded with. A team C the server never loaded shows it:

# %%
await push_account(nc_sys, Account("TEAM_C").jwt(acme))

# %% [markdown]
# The server checked the connected clients of team A against the new revocations and
# closed the laptop's connection, telling it why:

# %%
await asyncio.wait_for(laptop_closed.wait(), timeout=5)
nc_laptop.is_closed, nc_laptop.last_error

# %% [markdown]
# Logging in again with the same credentials is refused; ann's own connection is
# untouched:

# %% tags=["raises-exception"]
await connect(srv.url, user_credentials=laptop.credentials())

# %%
nc_ann.is_connected

# %% [markdown]
# ## Signing keys
#
# An account's own seed is the keys to the whole team. An account can list **signing
# keys** instead: users signed by one carry `issuer_account` (the account they belong
# to), and losing a signing key means removing it from the account JWT, not replacing
# the account. The team lead gets one:

# %%
lead = NKey.create("account")
team_a.signing_keys.append(lead)
await push_account(nc_sys, team_a.jwt(acme))
carol = team_a.user("carol", signing_key=lead)
decode_jwt(carol.jwt)["iss"] == lead.public_key

# %%
nc_carol = await connect(srv.url, user_credentials=carol.credentials())
connected = nc_carol.is_connected
await nc_carol.close()
connected

# %%
for nc in (nc_ann, nc_bob, nc_sys):
    await nc.close()
srv.stop()

# %% [markdown]
# ## An auth callout: your service decides each login
#
# JWTs suit users a team issues itself. When the people already live somewhere else (a
# company directory, an identity provider), the server can ask a service instead: with
# `auth_callout` in its `authorization` block, every login (except the service's own
# `auth_users`) becomes a request on `$SYS.REQ.USER.AUTH` in the service's account. The
# request is a JWT signed by the server's own key, valid for the auth timeout (`exp`),
# carrying what the client sent (user, password, token...) and a fresh user key; the
# answer is a JWT signed by an account key, holding either an error or a user JWT for
# that key, signed by the `issuer` account key: its account (`aud`, outside operator
# mode) and permissions (nats-server `server/auth_callout.go`, ADR-26). The
# request carries the client's password in clear: in production, an `xkey` in the
# `auth_callout` block makes the server encrypt requests for the service (not done here).
#
# Our identity provider is a file of people, passwords stored as bcrypt hashes only:

# %%
import tempfile
from pathlib import Path

from edalab.course.identity import People

people_file = Path(tempfile.mkdtemp(prefix="edalab-21-")) / "people.json"
people = People.write(
    people_file, {"ann": ("a", "ann-pw"), "amy": ("a", "amy-pw"), "bob": ("b", "bob-pw")}
)
people, people.get("ann")

# %% [markdown]
# The server: the callout service logs in as `auth` in account `AUTH` (its password is
# in the `accounts` block, not shown); teams land in `TEAM_A` and `TEAM_B`. The
# server's auth `timeout` (here 1 s) is how long a login waits for the callout's answer:

# %%
from edalab import auth_callout_config

issuer = NKey.create("account")
config = auth_callout_config(issuer, "auth", "auth-pw", ["TEAM_A", "TEAM_B"], timeout=1)
print(config[config.index("authorization") :].replace(issuer.public_key, "A..."))

# %%
csrv = lesson_server("21-callout", config=config)
nc_auth = await connect(csrv.url, user="auth", password="auth-pw", name="auth-callout")

# %% [markdown]
# ### One request, raw
#
# The service subscribes to `$SYS.REQ.USER.AUTH`. A login by ann starts in the
# background; the request arrives. Its claims (the password masked here):

# %%
requests = await nc_auth.subscribe("$SYS.REQ.USER.AUTH")
await nc_auth.flush()
login = asyncio.create_task(connect(csrv.url, user="ann", password="ann-pw", timeout=3))
msg = await requests.next_msg(timeout=3)
request = decode_jwt(msg.data.decode(), kind="authorization_request")
sent = request["nats"]["connect_opts"]
request["aud"], sent["user"], "***" if sent["pass"] else "", sorted(request["nats"])

# %% [markdown]
# `decode_jwt` checked the signature, that the signer is a server key (`N...`; an account
# or user key may not sign a request) and that `exp` has not passed. The service also
# checks that the signer is the server the request names, so a client that can publish
# on `$SYS.REQ.USER.AUTH` cannot forge a login request:

# %%
request["iss"] == request["nats"]["server_id"]["id"], request["iss"][:1]

# %% [markdown]
# The answer, by hand: a user JWT for the request's `user_nkey`, placed in `TEAM_A`
# (`aud`) with team a's subjects, wrapped in an authorization response addressed to the
# server (`aud` = the server's id), both signed by the issuer:

# %%
from edalab import encode_jwt

user = {
    "sub": request["nats"]["user_nkey"],
    "name": "ann",
    "aud": "TEAM_A",
    "nats": {"pub": {"allow": ["team.a.>"]}, "sub": {"allow": ["team.a.>", "_INBOX.>"]},
             "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2},
}  # fmt: skip
answer = {
    "sub": request["nats"]["user_nkey"],
    "aud": request["nats"]["server_id"]["id"],
    "nats": {"jwt": encode_jwt(user, issuer), "type": "authorization_response", "version": 2},
}
await msg.respond(encode_jwt(answer, issuer).encode())
nc_first = await login
await requests.unsubscribe()
nc_first.is_connected

# %% [markdown]
# ### The service, with the helper
#
# `AuthCalloutService` does the same for every login, asking a function of yours:
# a `Grant` (account and permissions) admits, `None` refuses. Here is the lesson's rule:

# %%
from edalab import AuthCalloutService, Grant


def rule(request):
    person = people.get(request.user)
    if person is None or not people.verify(request.user, request.password):
        return None
    own = f"team.{person.team}.>"
    return Grant(f"TEAM_{person.team.upper()}", publish=[own], subscribe=[own, "_INBOX.>"])


service = await AuthCalloutService(nc_auth, issuer, rule).start()

# %%
nc_amy = await connect(csrv.url, user="amy", password="amy-pw")
nc_amy.is_connected

# %% [markdown]
# A wrong password and an unknown name are refused at once:

# %% tags=["raises-exception"]
await connect(csrv.url, user="amy", password="guess")

# %% tags=["raises-exception"]
await connect(csrv.url, user="mallory", password="m4ll0ry")

# %% [markdown]
# Amy's permissions came from the callout: her team's subjects, nothing else.

# %% tags=["raises-exception"]
from edalab import publish_checked

await publish_checked(nc_amy, "team.a.plan", b"ok")
await publish_checked(nc_amy, "ops.deploy", b"not hers")

# %% [markdown]
# What the service decided (no password in it):

# %%
service.log.decisions

# %% [markdown]
# ## When the callout is down
#
# The service stops answering. A login now waits for the server's auth timeout and is
# **refused**: the server never admits a login the callout did not answer.

# %%
import time

from edalab import AuthenticationError

await service.stop()
started = time.monotonic()
try:
    await connect(csrv.url, user="amy", password="amy-pw", timeout=3)
    outcome = "admitted"
except AuthenticationError:
    outcome = "refused"
outcome, round(time.monotonic() - started)

# %% [markdown]
# Connections already in are not affected: amy's is still open.

# %%
nc_amy.is_connected

# %% [markdown]
# The same happens when the rule raises: the service answers nothing, and the login
# waits for the timeout. Return `None` to refuse.

# %%
for nc in (nc_first, nc_amy, nc_auth):
    await nc.close()
csrv.stop()

# %% [markdown]
# ## Class mode, issued this way
#
# `edalab class init` writes one account per student into the server's configuration,
# with bcrypt password hashes (see `edalab.course.classroom`). The same accounts could be
# issued as in this lesson: an operator JWT on the class server, one account JWT per
# student with its limits (pushed when a student joins, revoked when one leaves, with no
# restart), or a callout that admits each student into their own account from the
# school's directory, so the server's configuration holds no student at all.
#
# ## Recap
#
# - Decentralized security is a chain of signatures: the operator signs accounts, an
#   account (or its signing key) signs users, a client proves it holds its key. The
#   server keeps no user list and no secret.
# - An account is a namespace with its own JetStream; its JWT carries limits (streams,
#   storage, connections) that the server enforces with errors 10027, 10047 and
#   "maximum account active connections exceeded".
# - A resolver gives the server account JWTs; a new account JWT pushed on
#   `$SYS.REQ.ACCOUNT.<account>.CLAIMS.UPDATE` takes effect at once, and a revocation
#   closes the user's open connections ("User Authentication Revoked").
# - An auth callout decides logins from anywhere: the request and the answer are JWTs;
#   the answer places the user in an account with permissions. No answer within the auth
#   timeout means refused.
# - Seeds are secrets: `NKey` and the credentials hide them in every repr.
#
# ## Exercise
#
# Write `decide(request, people)` for the callout: a person of `people` whose password
# `people.verify` accepts lands in the account `TEAM_<team in upper case>` and may
# publish and subscribe to `team.<team>.>` only (and subscribe to `_INBOX.>` for
# replies); anyone else is refused at once. The checker starts a server of its own with
# a directory of its own and logs in for real: a right password, a wrong one, an unknown
# name, a publish outside the team, and a read of another team's subjects.

# %%
decide = None  # your answer, in the next cell, replaces this


# %% tags=["solution"]
def decide(request, people):
    person = people.get(request.user)
    if person is None or not people.verify(request.user, request.password):
        return None
    own = f"team.{person.team}.>"
    return Grant(account=f"TEAM_{person.team.upper()}", publish=[own], subscribe=[own, "_INBOX.>"])


# %%
from edalab.course import check, hint  # stuck? hint("21") in a new cell

await check("21", decide)
