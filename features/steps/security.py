"""Steps about security: encryption on the wire, permissions, the audit log, personal data,
hijack attempts and token handling, abuse limits (T105, T109, T116-T120). The checks are in
agentevents.testing.behaviours.security.

TLS goes through the target's ``wss://`` URL with its certificate authority (the profile's, or
the native stack's test CA; ``-D wss_url=... -D tls_ca=...``). A ``TcpProxy`` in front records
the ciphertext. The audit log, the archive and revocations are read and written through the
target's control (``agentevents.testing.control``).
"""

from __future__ import annotations

from behave import given, then, when

from agentevents.testing.behaviours import security
from agentevents.testing.parse_types import register_all
from agentevents.testing.steps_support import answer_approval

register_all()


# -- T116: TLS --------------------------------------------------------------------------------

@given("{name:Person} is connected over TLS through a recorded link")
async def step_tls_link(context, name):
    await security.connect_over_recorded_tls(context, name)


@given("{name:Person} is connected without TLS through a recorded link, uncompressed")
async def step_plain_link(context, name):
    await security.connect_over_recorded_plain_link(context, name)


@then("the recording of {name:Person}'s encrypted link shows neither {her:Possessive} question "
      "nor {her:Possessive} token")
async def step_no_plaintext(context, name, her):
    await security.encrypted_link_hides_question_and_token(context, name)


@then("the recording of {name:Person}'s plain link shows {her:Possessive} question and {her:Possessive} token")
async def step_plaintext_control(context, name, her):
    await security.plain_link_shows_question_and_token(context, name)


# -- T117: permissions shape events -----------------------------------------------------------

@then("{name:Person} sees the SQL query and the rows it returned")
async def step_sees_sql(context, name):
    await security.sees_sql_and_rows(context, name)


@then("{name:Person} sees no SQL call and no database rows")
async def step_no_sql(context, name):
    await security.sees_no_sql(context, name)


@then("every one of {name:Person}'s database queries is refused as sql_not_allowed and shows "
      "{her:Possessive} nothing of {other:Person}'s conversation")
async def step_sql_reads_refused(context, name, her, other):
    await security.database_shows_nothing_of_others(context, name, other)


# -- T118: the audit log ----------------------------------------------------------------------

@then("every event {name:Person} received is in the audit log with {her:Possessive} user id and connection id")
async def step_audit(context, name, her):
    await security.audit_holds_every_event(context, name)


# -- T119: personal data ----------------------------------------------------------------------

@when("{name:Person} asks the research agent about a refund, giving {her:Possessive} email, card number "
      "and an access token")
async def step_pii_question(context, name, her):
    await security.ask_research_with_pii(context, name)


@then("no frame that any connection received contains {her:Possessive} personal data")
async def step_no_pii_frames(context, her):
    await security.no_pii_in_any_frame(context)


@then("{name:Person} sees {her:Possessive} email, card number and token marked as redacted")
def step_redaction_markers(context, name, her):
    security.pii_marked_redacted(context, name)


@then("the archive of {name:Person}'s run holds every event and none of {her:Possessive} personal data")
async def step_no_pii_archive(context, name, her):
    await security.archive_whole_without_pii(context, name)


# -- T120: hijack attempts and token handling -------------------------------------------------

@when("{attacker:Person} tries to follow, replay, cancel and answer {victim:Person}'s run")
async def step_hijack(context, attacker, victim):
    await security.try_to_hijack(context, attacker, victim)


@when("{name:Person} approves {her:Possessive} agent's request")
async def step_approve(context, name, her):
    await answer_approval(context.world.last_run(name), True, f"{name}'s own answer was refused",
                          "the approval request")


@then("every one of {attacker:Person}'s attempts is refused as forbidden")
def step_hijack_refused(context, attacker):
    security.hijack_refused(context, attacker)


@then("{attacker:Person} learns nothing about {victim:Person}'s run")
async def step_learns_nothing(context, attacker, victim):
    await security.learns_nothing(context, attacker, victim)


@then("{name:Person}'s run records {her:Possessive} own approval")
async def step_own_approval(context, name, her):
    await security.records_own_approval(context, name)


@when("someone connects as {name:Person} with a token signed with another key")
async def step_foreign_key(context, name):
    await security.connect_with_foreign_key(context, name)


@when("someone connects as {name:Person} with one of {her:Possessive} tokens after it was revoked")
async def step_revoked(context, name, her):
    await security.connect_after_revocation(context, name)


@then("the handshake is refused with HTTP {status:d}")
def step_handshake_refused(context, status):
    security.handshake_refused(context, status)


# -- T105: refreshing a token mid-run ---------------------------------------------------------

@then("{name:Person}'s connection stays open past {her:Possessive} first token's expiry "
      "while {her:Possessive} run arrives whole")
async def step_refresh_kept(context, name, her):
    await security.stays_open_past_first_token(context, name, her)


# -- T109: flooding and budgets ---------------------------------------------------------------

@when("{name:Person} floods the service with {count:d} messages at once")
async def step_flood(context, name, count):
    await security.flood(context, name, count)


@then("{name:Person} is told to slow down and stays connected")
async def step_slowed(context, name):
    await security.slowed_down_and_connected(context, name)


@then("{name:Person}'s agent is stopped at the free tier's budget of {budget:d} events "
      "and {her:Possessive} run ends degraded")
async def step_budget(context, name, budget, her):
    await security.stopped_at_budget(context, name, budget)
