"""Steps about what people receive: which events, in what order, how fast, for whom."""

from behave import then
from hamcrest import assert_that, empty, equal_to

from agentevents.testing.figures import record_figure
from agentevents.testing.matchers import follows_lifecycle, gapless_seqs, has_envelope, only_events_of
from agentevents.testing.measures import human
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import runs_ended
from agentevents.testing.stories import assert_story, error_instead_of_start, story, thoughts_between_start_and_end

register_all()



@then("{name:Person} receives {event:EventType} within {limit:Duration}")
async def step_receives_within(context, name, event, limit):
    run = context.world.last_run(name)
    frame = await run.client.wait_for(lambda f: f.type == event and f.data.get("run_id") == run.run_id,
                                      max(limit * 4, 5), event)
    elapsed = frame.at - run.sent_at
    record_figure(context, f"{event} {human(elapsed)} after {name}'s request — limit {human(limit)}")
    assert elapsed <= limit, f"{event} arrived after {human(elapsed)}; the limit is {human(limit)}"


@then("{name:Person} sees the agent {phrase}, in that order")
async def step_story(context, name, phrase):
    _run, _end, events = await context.world.finished(name)
    assert_story(events, story(phrase), f"the agent {phrase}")


@then("{name:Person} sees {n:d} thoughts, one for each step, between the start and the end of {her:Possessive} run")
async def step_thoughts_between(context, name, n, her):
    _run, _end, events = await context.world.finished(name)
    assert_story(events, thoughts_between_start_and_end(n), f"{n} thoughts between the start and the end")


@then("{name:Person} sees an error instead of a start, and then the end of {her:Possessive} run")
async def step_error_instead_of_start(context, name, her):
    _run, _end, events = await context.world.finished(name)
    assert_story(events, error_instead_of_start(), "an error instead of a start")


@then("{name:Person}'s run follows the lifecycle")
async def step_lifecycle(context, name):
    _run, _end, events = await context.world.finished(name)
    assert_that(events, follows_lifecycle())


@then("{name:Person}'s events are numbered without gaps or repeats")
async def step_gapless(context, name):
    await context.world.finished(name)
    assert_that(context.world.events_of(name), gapless_seqs())


@then("every event {name:Person} received has the full envelope for {her:Possessive} conversation")
async def step_envelope(context, name, her):
    run, _end, events = await context.world.finished(name)
    assert_that(events, has_envelope(user_id=context.world.person(name).user_id, thread_id=run.thread_id))


@then("{name:Person}'s run completes with status {status:Status}")
async def step_status(context, name, status):
    _run, end, _events = await context.world.finished(name)
    assert_that(end.data["data"]["status"], equal_to(status))


@then("{name:Person}'s run completes with result {value:d}")
async def step_result(context, name, value):
    _run, end, _events = await context.world.finished(name)
    assert_that(end.data["data"]["status"], equal_to("completed"))
    assert_that(end.data["data"]["result"], equal_to(value))


@then("{name:Person} receives nothing from {other:Person}'s conversations")
async def step_nothing_from(context, name, other):
    world = context.world
    await runs_ended(world.runs_of(other))
    theirs = {r.thread_id for r in world.runs_of(other)}
    deadline_frames = []
    await world.quiet(world.person(name).clients)  # the defined end: an in-order barrier, then a grace
    for client in world.person(name).clients:
        deadline_frames += [f for f in client.frames if f.data.get("thread_id") in theirs
                            or f.data.get("user_id") == world.person(other).user_id]
    assert_that(deadline_frames, empty())
    assert_that(world.events_of(name), only_events_of(world.person(name).user_id))
