"""Steps about the events people receive."""

from __future__ import annotations

from behave import then
from hamcrest import assert_that, equal_to

from agentevents.testing.matchers import event_types_exactly, follows_lifecycle, gapless_seqs, has_envelope
from agentevents.testing.parse_types import register_all

register_all()

RUN_TIMEOUT_S = 15


async def run_events(context, name):
    person = context.world.person(name)
    run_id = person.runs["last"]
    await person.client.wait_run_end(run_id, RUN_TIMEOUT_S)
    return person, person.client.events(run_id=run_id)


@then("{name:Person} receives {event:EventType} within {limit:Duration}")
async def step_receives_within(context, name, event, limit):
    person = context.world.person(name)
    run_id = person.runs["last"]
    frame = await person.client.wait_for(lambda f: f.type == event and f.data.get("run_id") == run_id,
                                         max(limit * 4, 5), event)
    elapsed = frame.at - context.world.notes["sent_at"]
    print(f"measured: {event} after {elapsed * 1000:.1f} ms (limit {limit * 1000:.0f} ms)")
    assert elapsed <= limit, f"{event} arrived after {elapsed * 1000:.1f} ms; the limit is {limit * 1000:.0f} ms"


@then("{name:Person} receives the run's events in the order {types:EventList}")
async def step_order(context, name, types):
    _person, events = await run_events(context, name)
    assert_that(events, event_types_exactly(*types))
    assert_that(events, follows_lifecycle())
    assert_that(events, gapless_seqs(start=1))


@then("every event {name:Person} received has the full envelope for her thread")
async def step_envelope(context, name):
    person, events = await run_events(context, name)
    assert_that(events, has_envelope(user_id=person.user_id, thread_id=person.threads["last"]))


@then("the run completes with result {value:d}")
async def step_result(context, value):
    people = [p for p in context.world.people.values() if "last" in p.runs]
    person = people[-1]
    end = await person.client.wait_run_end(person.runs["last"], RUN_TIMEOUT_S)
    assert_that(end.data["data"]["status"], equal_to("completed"))
    assert_that(end.data["data"]["result"], equal_to(value))
