"""A class on a real server, for the class-mode tests: the files ``class init`` writes,
one embedded server with the class's accounts, and the instructor's progress stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edalab import NatsServer, connect
from edalab.course.classroom import Classroom, ensure_progress_stream, load_env_file


def creds(path: Path) -> dict[str, str]:
    """The user and password an env file of ``class init`` gives (for ``connect``)."""
    env = load_env_file(path)
    return {"user": env["NATS_USER"], "password": env["NATS_PASSWORD"]}


@contextmanager
def class_server(students: int, out: Path, name: str) -> Iterator[tuple[Classroom, NatsServer]]:
    """A class of ``students`` written to ``out``, served by one embedded server."""
    room = Classroom.generate(students, bcrypt_rounds=4)
    with NatsServer(name=name, config=room.accounts_conf()) as srv:
        room.write(out, url=srv.url)

        async def setup() -> None:
            nc = await connect(srv.url, **creds(out / "instructor.env"))
            await ensure_progress_stream(nc.jetstream())
            await nc.close()

        asyncio.run(setup())
        yield room, srv
