"""Exercise 20's checker, on a server of its own: a read replica gathering both regions'
sales under ``report.`` passes; the wrong answers learners write each get "not yet" with
the next step."""

from __future__ import annotations

import contextlib

import nats.js.errors
import pytest
from nats.js.api import StreamConfig, StreamSource, SubjectTransform

from edalab import NatsServer, connect
from edalab.course import check
from edalab.course._checkers import _core
from tests.internals import checker_20


@pytest.fixture(scope="module")
def server():
    """A server for these tests alone: the lesson's streams live on a lesson server too."""
    with NatsServer(name="edalab-exercise-20") as srv:
        yield srv


@pytest.fixture
async def js(server, monkeypatch):
    """SALES_EU and SALES_US with a sale each, no REPORTS; wrong answers wait 1 s, not 5."""

    def reraise(exercise, err):
        raise err

    monkeypatch.setattr(_core, "_unexpected", reraise)  # an unforeseen error fails the test
    monkeypatch.setattr(checker_20, "_WAIT", 1.0)
    nc = await connect(server.url)
    js = nc.jetstream()
    for name in ("REPORTS", "SALES_EU", "SALES_US"):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(name)
    await js.add_stream(name="SALES_EU", subjects=["eu.sale.>"])
    await js.add_stream(name="SALES_US", subjects=["us.sale.>"])
    await js.publish("eu.sale.placed", b'{"region": "eu"}')
    await js.publish("us.sale.placed", b'{"region": "us"}')
    yield js
    await nc.close()


def _sources(src: str, dest: str) -> list[StreamSource]:
    """Both regions, each with one transform (``{r}`` stands for the region)."""
    return [
        StreamSource(
            name=f"SALES_{r.upper()}",
            subject_transforms=[SubjectTransform(src=src.format(r=r), dest=dest.format(r=r))],
        )
        for r in ("eu", "us")
    ]


async def test_the_solution_passes(js):
    """The notebook's answer: one source per region, eu.sale.> renamed report.eu.sale.>."""
    reports = await js.add_stream(
        StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "report.{r}.sale.>"))
    )
    result = await check("20", js, reports, report=False)
    assert result.passed, result.message
    assert "all 4 new sales" in result.message


async def test_a_different_right_answer_passes(js):
    """Written differently: a '>' transform that prefixes everything, and the name passed."""
    await js.add_stream(StreamConfig(name="REPORTS", sources=_sources(">", "report.>")))
    result = await check("20", js, "REPORTS", report=False)
    assert result.passed, result.message


async def test_a_filtered_mirror_is_not_yet(js):
    """A mirror of one region, filtered to one subject, misses the rest: use sources."""
    mirror = StreamSource(name="SALES_EU", filter_subject="eu.sale.placed")
    reports = await js.add_stream(StreamConfig(name="REPORTS", mirror=mirror))
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "3 of the 4 new sales never reached REPORTS" in result.message, result.message
    assert "is a mirror of SALES_EU" in result.message and "sources=[...]" in result.message


async def test_sources_without_the_transform_are_not_yet(js):
    """Every sale arrives, under its old subject: add the transform."""
    plain = [StreamSource(name="SALES_EU"), StreamSource(name="SALES_US")]
    reports = await js.add_stream(StreamConfig(name="REPORTS", sources=plain))
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "reached REPORTS as eu.sale.placed (from eu.sale.placed)" in result.message
    assert "subject_transforms" in result.message


async def test_a_one_token_transform_misses_deeper_subjects(js):
    """'*' takes one token: eu.sale.probe.<token> never arrives; the hint says use '>'."""
    reports = await js.add_stream(
        StreamConfig(
            name="REPORTS", sources=_sources("{r}.sale.*", "report.{r}.sale.{{{{wildcard(1)}}}}")
        )
    )
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "2 of the 4 new sales never reached" in result.message, result.message
    assert "with '>'" in result.message


async def test_a_second_stream_on_the_same_subjects_is_refused_then_not_yet(js):
    """Capturing the regions' subjects again is refused (10065); the check says why."""
    with pytest.raises(nats.js.errors.BadRequestError) as refused:
        await js.add_stream(name="REPORTS", subjects=["eu.sale.>", "us.sale.>"])
    assert refused.value.err_code == 10065
    result = await check("20", js, "REPORTS", report=False)
    assert not result.passed
    assert "there is no stream 'REPORTS' yet" in result.message
    assert "10065" in result.message and "sources=[StreamSource" in result.message


async def test_a_replica_with_subjects_of_its_own_is_not_yet(js):
    """Sources right, but subjects too: anyone could publish into it."""
    config = StreamConfig(
        name="REPORTS", subjects=["report.>"], sources=_sources("{r}.sale.>", "report.{r}.sale.>")
    )
    reports = await js.add_stream(config)
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "has subjects of its own (report.>)" in result.message


async def test_the_placeholder_and_missing_origins(js):
    """None says "still None"; without the lesson's streams, the check says to run them."""
    result = await check("20", js, None, report=False)
    assert not result.passed and "reports is still None" in result.message
    await js.delete_stream("SALES_US")
    result = await check("20", js, "REPORTS", report=False)
    assert not result.passed
    assert "no stream 'SALES_US' yet" in result.message and "run the notebook" in result.message


async def test_a_region_sourced_twice_is_not_yet(js):
    """Two overlapping sources of SALES_EU copy eu.sale.placed twice; the check waits for
    both copies (not only the first) and names the overlap."""
    sources = _sources("{r}.sale.>", "report.{r}.sale.>")
    again = SubjectTransform(src="eu.sale.placed", dest="report.eu.sale.placed")
    sources.append(StreamSource(name="SALES_EU", subject_transforms=[again]))
    reports = await js.add_stream(StreamConfig(name="REPORTS", sources=sources))
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "eu.sale.placed reached REPORTS more than once" in result.message, result.message
    assert "one StreamSource per region" in result.message


async def test_one_region_only_names_the_missing_source(js):
    """Only SALES_EU sourced: the next step names SALES_US."""
    reports = await js.add_stream(
        StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "report.{r}.sale.>")[:1])
    )
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "add a StreamSource for SALES_US" in result.message, result.message


async def test_both_regions_with_one_regions_pattern_names_the_patterns(js):
    """Both sourced, but the US source kept the EU pattern (copy-paste): nothing of SALES_US
    matches it, and the check shows each source's pattern."""
    sources = [
        StreamSource(
            name=f"SALES_{r.upper()}",
            subject_transforms=[SubjectTransform(src="eu.sale.>", dest="report.eu.sale.>")],
        )
        for r in ("eu", "us")
    ]
    reports = await js.add_stream(StreamConfig(name="REPORTS", sources=sources))
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "2 of the 4 new sales never reached" in result.message, result.message
    assert "SALES_US takes eu.sale.>" in result.message


async def test_the_wrong_prefix_is_not_yet(js):
    """reports. instead of report.: the copies arrive, under the wrong subject."""
    reports = await js.add_stream(
        StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "reports.{r}.sale.>"))
    )
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "as reports.eu.sale.placed (from eu.sale.placed)" in result.message


async def test_the_config_passed_instead_of_the_info_passes(js):
    """A learner who built the StreamConfig first may pass it: a right answer."""
    config = StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "report.{r}.sale.>"))
    await js.add_stream(config)
    result = await check("20", js, config, report=False)
    assert result.passed, result.message


async def test_a_forgotten_await_says_so(js):
    """The coroutine of js.add_stream (no await) gets "put await in front"."""
    config = StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "report.{r}.sale.>"))
    pending = js.add_stream(config)
    try:
        result = await check("20", js, pending, report=False)
    finally:
        await pending
    assert not result.passed
    assert "put await in front" in result.message


async def test_regions_created_again_after_reports_say_start_over(js):
    """Re-running the sources cell after a check recreates SALES_EU and SALES_US: REPORTS
    resumes past the old streams' last sequence, skips the new sales, and the check says
    to create it again (not that the transforms are wrong)."""
    reports = await js.add_stream(
        StreamConfig(name="REPORTS", sources=_sources("{r}.sale.>", "report.{r}.sale.>"))
    )
    assert (await check("20", js, reports, report=False)).passed  # REPORTS copied to seq 3
    for stream, region in (("SALES_EU", "eu"), ("SALES_US", "us")):
        await js.delete_stream(stream)
        await js.add_stream(name=stream, subjects=[f"{region}.sale.>"])
        await js.publish(f"{region}.sale.placed", b"{}")
    result = await check("20", js, reports, report=False)
    assert not result.passed
    assert "SALES_EU and SALES_US were created again after REPORTS" in result.message, (
        result.message
    )
    assert "delete it (await js.delete_stream('REPORTS'))" in result.message


async def test_a_check_call_missing_its_js_says_how_to_write_it(js) -> None:
    """check("20", reports) (the js left out) is a "not yet" naming the call, no TypeError."""
    from edalab.course import check

    result = await check("20", object(), report=False)
    assert not result.passed
    assert "await check('20', js, reports)" in result.message
