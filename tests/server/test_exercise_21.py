"""Exercise 21's checker: real logins through the learner's callout decide (lesson 21)."""

from __future__ import annotations

import pytest

from edalab import Grant
from edalab.course._checkers import _core as exercises
from edalab.course.exercises import check


@pytest.fixture(autouse=True)
def _unforeseen_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """A checker tripping on an error it did not foresee fails the test loudly."""

    def reraise(exercise: str, err: Exception) -> None:
        raise err

    monkeypatch.setattr(exercises, "_unexpected", reraise)


def solution(request, people):  # type: ignore[no-untyped-def]
    person = people.get(request.user)
    if person is None or not people.verify(request.user, request.password):
        return None
    own = f"team.{person.team}.>"
    return Grant(f"TEAM_{person.team.upper()}", publish=[own], subscribe=[own, "_INBOX.>"])


async def test_solution_passes() -> None:
    """The lesson's solution is admitted, refused and confined as the checker expects."""
    result = await check("21", solution, report=False)
    assert result.passed, result.message


async def test_right_answer_written_differently_passes() -> None:
    """An async decide with its own shape (a table of accounts, * wildcards) passes too."""
    accounts = {"a": "TEAM_A", "b": "TEAM_B"}

    async def decide(request, people):  # type: ignore[no-untyped-def]
        if not people.verify(request.user, request.password):
            return None
        team = people.get(request.user).team
        return Grant(
            account=accounts[team],
            publish=[f"team.{team}.*"],
            subscribe=[f"team.{team}.*", "_INBOX.>"],
        )

    result = await check("21", decide, report=False)
    assert result.passed, result.message


async def test_placeholder_none_says_write_your_answer() -> None:
    """The student copy's ``decide = None`` gets the still-None answer."""
    result = await check("21", None, report=False)
    assert not result.passed and "decide is still None" in result.message


async def test_admitting_everyone_is_not_yet() -> None:
    """A decide that never checks the password lets a wrong password in: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        team = "a" if request.user != "bob" else "b"
        own = f"team.{team}.>"
        return Grant(f"TEAM_{team.upper()}", publish=[own], subscribe=[own, "_INBOX.>"])

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "a wrong password ('ann') was admitted" in result.message
    assert "people.verify" in result.message


async def test_forgotten_permissions_are_not_yet() -> None:
    """A Grant without publish= lets ann publish anywhere in her account: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        return Grant(f"TEAM_{person.team.upper()}")

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "may publish on ops.deploy" in result.message and "publish=[" in result.message


async def test_raising_on_unknown_user_is_not_yet() -> None:
    """A decide that raises for an unknown name leaves the login to time out: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        team = person.team  # AttributeError for an unknown name
        if not people.verify(request.user, request.password):
            return None
        own = f"team.{team}.>"
        return Grant(f"TEAM_{team.upper()}", publish=[own], subscribe=[own, "_INBOX.>"])

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "an unknown name ('mallory') was refused only after" in result.message
    assert "AttributeError" in result.message and "Return None" in result.message


async def test_one_account_for_everyone_is_not_yet() -> None:
    """Everyone in TEAM_A (with the right permissions) still mixes the teams: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        own = f"team.{person.team}.>"
        return Grant("TEAM_A", publish=[own], subscribe=[own, "_INBOX.>"])

    result = await check("21", decide, report=False)
    assert not result.passed and "bob (team b) landed in account 'TEAM_A'" in result.message


async def test_unknown_account_name_is_not_yet() -> None:
    """An account name the server lacks refuses ann: the check names the account."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        own = f"team.{person.team}.>"
        return Grant(f"team_{person.team}", publish=[own], subscribe=[own, "_INBOX.>"])

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "team_a" in result.message and "no such account" in result.message


async def test_returning_true_is_not_yet() -> None:
    """A decide returning True (not a Grant) leaves ann unanswered: the check names it."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        return people.verify(request.user, request.password)

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "decide returned bool for 'ann', not a Grant or None" in result.message
    assert "return Grant(account=" in result.message


def _grant(person, *, publish=None, subscribe=None):  # type: ignore[no-untyped-def]
    own = f"team.{person.team}.>"
    return Grant(
        f"TEAM_{person.team.upper()}",
        publish=[own] if publish is None else publish,
        subscribe=[own, "_INBOX.>"] if subscribe is None else subscribe,
    )


async def test_admitting_a_login_without_password_is_not_yet() -> None:
    """A decide that checks a password only when one is sent lets an empty one in: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None:
            return None
        if request.password and not people.verify(request.user, request.password):
            return None
        return _grant(person)

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "a login without a password ('ann') was admitted" in result.message
    assert "people.verify" in result.message


async def test_plaintext_compare_to_the_hash_is_not_yet() -> None:
    """Comparing the sent password to the stored bcrypt hash refuses everyone: not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or person.password_hash != request.password:
            return None
        return _grant(person)

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "ann, with her right password, was refused" in result.message
    assert "people.verify" in result.message


async def test_subscribe_everything_is_not_yet() -> None:
    """A Grant that lets ann subscribe to '>' (her account's every subject): not yet."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        return _grant(person, subscribe=[">"])

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "may subscribe to team.b.>" in result.message and "subscribe=[" in result.message


async def test_subscribe_without_inbox_is_not_yet() -> None:
    """Forgetting '_INBOX.>' leaves ann without replies: not yet, naming _INBOX."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        return _grant(person, subscribe=[f"team.{person.team}.>"])

    result = await check("21", decide, report=False)
    assert not result.passed and "'_INBOX.>'" in result.message


async def test_a_subject_string_instead_of_a_list_is_not_yet() -> None:
    """publish="team.a.>" (a str, not a list) gets a named TypeError, not 'no such account'."""

    def decide(request, people):  # type: ignore[no-untyped-def]
        person = people.get(request.user)
        if person is None or not people.verify(request.user, request.password):
            return None
        own = f"team.{person.team}.>"
        return Grant(f"TEAM_{person.team.upper()}", publish=own, subscribe=[own, "_INBOX.>"])

    result = await check("21", decide, report=False)
    assert not result.passed
    assert "no such account" not in result.message
    assert "list of subjects" in result.message
