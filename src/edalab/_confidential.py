"""Keep passwords, tokens and nkey seeds out of messages, and out of other users' reach.

Everything edalab shows a person (an error, a repr, the CLI's output, the server log
tail quoted in :class:`~edalab.ServerStartError`) goes through :func:`mask_url` or
:func:`redact` first; every file edalab writes that may hold a credential (a server
configuration with passwords, a state file) is created with :func:`write_private`,
readable by its owner only (mode 0600). Notebook ``12_security`` shows the errors.

    >>> mask_url("nats://ann:s3cret@127.0.0.1:4222")
    'nats://ann:***@127.0.0.1:4222'
    >>> redact('users: [{user: "ann", password: "s3cret"}]')
    'users: [{user: "ann", password: "***"}]'
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["MASK", "mask_url", "redact", "secrets_in_config", "write_private"]

#: What a secret is replaced with.
MASK = "***"

# scheme://userinfo@ : userinfo is "user:password" or a bare token (nats-py reads a URL
# with a user and no password as a token).
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<info>[^/@\s,\"']+)@")
# An nkey seed: 'S', the key type, then base32 (58 characters in all).
_SEED = re.compile(r"\bS[UAONCXP][A-Z2-7]{56}\b")
# `password: x`, `"pass": "x"`, `token = x` ... in a nats-server configuration or its echo.
_CONFIG_SECRET = re.compile(
    r"(?P<key>([\"']?)\b(?:password|pass|token|auth_token|seed|nkey_seed)\b\2\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'[^']*'|[^\s,}\]]+)",
    re.IGNORECASE,
)


def mask_url(url: str) -> str:
    """The URL (or comma-separated URLs) with any password or token replaced by ``***``.

    The user name stays: it says who tried.

        >>> mask_url("nats://s3cret-token@host:4222,nats://host2:4222")
        'nats://***@host:4222,nats://host2:4222'
        >>> mask_url("ann:s3cret@host:4222")
        'ann:***@host:4222'
    """

    out = []
    for part in url.split(","):
        if "://" not in part and "@" in part:  # host:port alone means nats://host:port
            lead = len(part) - len(part.lstrip())
            part = part[:lead] + _mask_userinfo("nats://" + part[lead:])[len("nats://") :]
        out.append(_mask_userinfo(part))
    return ",".join(out)


def _hide_userinfo(found: re.Match[str]) -> str:
    user, colon, _ = found.group("info").partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{found.group('scheme')}{shown}@"


def _mask_userinfo(text: str) -> str:
    return _URL_USERINFO.sub(_hide_userinfo, text)


def secrets_in_config(config: str) -> list[str]:
    """The passwords, tokens and nkey seeds written in a nats-server configuration text.

    >>> secrets_in_config('{"user": "ann", "password": "s3cret"}')
    ['s3cret']
    """
    found = []
    for match in _CONFIG_SECRET.finditer(config):
        value = match.group("value")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if value:
            found.append(value)
    found.extend(_SEED.findall(config))
    return found


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known ``secrets`` and anything shaped like a credential masked.

    Masks each given secret where it stands as a whole word, passwords in URLs, nkey
    seeds, and the values of ``password``/``token``/``seed`` settings.

        >>> redact("login of ann with hunter22 failed", ["hunter22"])
        'login of ann with *** failed'
    """
    out = _mask_userinfo(text)
    out = _SEED.sub(MASK, out)

    def hide(found: re.Match[str]) -> str:
        value = found.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{found.group('key')}{quote}{MASK}{quote}"

    out = _CONFIG_SECRET.sub(hide, out)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![A-Za-z0-9])", MASK, out)
    return out


def write_private(path: Path | str, text: str) -> Path:
    """Write ``text`` to ``path``, readable and writable by its owner only (mode 0600).

    The file is created with that mode (never chmod-ed afterwards, so it is never
    readable by others, not even for a moment) and then renamed into place, so a
    reader sees the old or the new content, never half of it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a crash: start from a file made here
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
