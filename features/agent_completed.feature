Feature: agent_completed: the user learns how a run ended and what it produced
  In order to act on an agent's answer, and to know when it is safe to ask again
  As a user of an AI chat product
  I want every run to end with one clear completion: its outcome, its result and an honest account of the work

  @T081 @golden @reference_agents
  Scenario: A successful run ends as completed with its final result
    The completion is the answer the user was waiting for. If it is missing, wrong or not the
    last word of the run, the chat either hangs or shows a wrong number as final. This is also
    the golden path: the user sees the agent start, think, use its tool and finish, in order.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice receives agent_started within 500 ms
    And Alice sees the agent start, think twice, use the calculator and finish, in that order
    And every event Alice received has the full envelope for her conversation
    And Alice's run completes with result 84
    And Alice's run follows the lifecycle

  @T082 @reference_agents
  Scenario: The completion's summary and counts match the work the user saw
    The summary is what a user reads first and what support staff quote back. Its counts must
    agree with what the user actually watched, or the product contradicts itself.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then the summary of Alice's completion names the calculation she saw and its answer 84
    And Alice's completion counts exactly the tool calls and events that reached her

  @T083 @reference_agents
  Scenario: A research run goes through its stages in order
    Users follow research as it happens: the agent plans, searches, reads the results and answers.
    Stages shown out of order would make the answer look made up before the search finished.

    Given Alice is connected
    When Alice asks the research agent "What is the tallest volcano on Mars?"
    Then Alice sees the agent start, plan, search, read the results and answer, in that order
    And Alice's events are numbered without gaps or repeats

  @T084 @reference_agents
  Scenario: A research answer comes with its sources and next steps
    An answer a user can check is an answer a user can trust; suggestions for what to ask next
    keep the conversation going.

    Given Alice is connected
    When Alice asks the research agent "What is the tallest volcano on Mars?"
    Then Alice's research answer mentions "Olympus Mons"
    And Alice's completion cites the knowledge-base sources her search found
    And Alice's completion suggests what to do next

  @T085 @conformance_agent
  Scenario: A run reports how long it took
    Run durations feed the user's progress display and our own service figures; a wrong figure
    misleads both.

    Given Alice is connected
    When Alice starts an agent that works quietly for 1 second
    Then Alice's run reports a duration of at least 1 second, within 150 ms of the time between its first and last event

  @T086 @conformance_agent
  Scenario: Finished runs free their slots for new ones
    Each tier may run a set number of agents at a time (five on the free tier of our reference
    stack). Once those runs end, the user must be able to start as many again; a slot that is
    never given back locks the user out for good.

    Given Alice is on the free tier
    And Alice is connected
    When Alice starts as many agents at once as her tier allows, that each work quietly for 1 second
    And Alice tries to start one more agent while those are still going
    And all of Alice's runs have finished
    And Alice starts as many agents at once as her tier allows, that each work quietly for 0.2 seconds
    Then the extra agent was refused because Alice already had as many runs going as her tier allows
    And all of Alice's new runs are accepted and complete

  @T087 @reference_agents
  Scenario: A research question without a source ends as partial, with an explanation
    Saying "I found nothing" honestly is better than an invented answer or an endless wait.

    Given Alice is connected
    When Alice asks the research agent "Blorptastic zindlewhomp frabjous?"
    Then Alice's run completes with status partial
    And Alice's completion explains that no source was found

  @T088 @reference_agents
  Scenario: A follow-up run in the same conversation counts as the second iteration
    A user's correction belongs to the same conversation as the first answer. Numbering the
    attempts lets the product show "second try" and measure how often users must correct us.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    And Alice's run has finished
    And Alice asks the math agent "Not quite: I meant 12*(3+4)*2" in the same conversation
    Then Alice's run completes with result 168
    And Alice's runs in the conversation complete as iterations 1 and 2

  @T089 @reference_agents
  Scenario: A team run credits every agent that contributed
    Several specialists working together should each be credited for what they did; the credits in the
    completion must match the agents the user actually saw at work.

    Given Alice is connected
    When Alice asks the team agent "How far away is the Moon, and what is 384400*2?"
    Then Alice's completion lists coordinator, researcher and mathematician as contributors
    And every contributor authored events Alice received, and no one else did

  @T090 @reference_agents
  Scenario: A completion suggests what to do next
    A suggested next step turns a dead end into a next question and keeps users engaged.

    Given Alice is connected
    When Alice asks the triage agent "What is 12*(3+4)?"
    Then Alice's completion suggests starting the math agent next

  @T091 @reference_agents
  Scenario: The math completion says how sure it is and how it got there
    Users decide how far to rely on an answer by how it was obtained; an exact calculation
    deserves to be presented with full confidence.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice's completion assesses its quality with a confidence between 0 and 1 and a method

  @T092 @conformance_agent
  Scenario: A user who prefers brief summaries gets a one-sentence summary
    Some users want the gist, others the whole story. Personalising the summary must honour the
    user's own preference and never leak it onto another user.

    Given Alice prefers brief summaries
    And Alice is connected
    And Bob is connected
    When Alice and Bob each start an agent that summarises its work in three sentences
    Then Alice's summary is one sentence, personalised for her summary style
    And Bob's summary is the agent's full summary, not personalised

  @T093 @reference_agents
  Scenario: A research completion records what was learned
    What the agent learned on one question can be shown to the user and reused on the next one.

    Given Alice is connected
    When Alice asks the research agent "What is the tallest volcano on Mars?"
    Then Alice's completion records what was learned from its best source

  @T094 @conformance_agent
  Scenario: The completion's metrics equal what the user received
    Metrics drive usage reports and billing. They must count exactly what the user was shown:
    no phantom events, no missing tool calls, the same duration.

    Given Alice is connected
    When Alice starts an agent that thinks 3 times and uses the calculator 2 times
    Then the metrics in Alice's completion equal the events, tool calls and time she received

  @T095 @reference_agents
  Scenario: A failed run says so, with the reason
    A run that cannot go on must say so at once with a reason the product can act on, instead of
    leaving the user waiting.

    Given Alice is connected
    When Alice asks the math agent "Tell me a joke"
    Then the last event before Alice's completion is an error the run cannot recover from
    And Alice's run completes with status failed
    And Alice's completion reports the error code "no_expression" that she was shown

  @T096 @conformance_agent
  Scenario: A run over its time limit ends as timeout with what it produced so far
    A run that overruns must not hang the user: it ends promptly and still hands over the work
    it managed to do.

    Given Alice is connected
    When Alice starts an agent that calculates a total, then overruns a 1-second limit
    Then Alice's run completes with status timeout
    And Alice's completion carries the partial result produced before the limit, promptly

  @T097 @fault @reference_agents @fault_control
  Scenario: The data analyst without its database ends degraded and says what is missing
    Even with the database down, the user still deserves the analysis that was possible, clearly
    marked as incomplete, with the missing source named.

    Given Alice holds the "tools:sql" permission
    And Alice is connected
    When Alice asks the data analyst "How many customers do we have?" while the database is paused
    Then Alice's run completes with status degraded
    And Alice's completion names the database as unavailable and keeps the rest of the analysis

  @T098 @conformance_agent
  Scenario: A run that recovers from a tool error completes and says what it recovered from
    A failed tool is not a failed answer. The user gets the answer, and the completion is honest
    that something went wrong on the way.

    Given Alice is connected
    When Alice starts an agent that hits a failing tool, then succeeds with another one
    Then Alice's run completes with status completed
    And Alice's completion records the tool errors she saw as recovered from

  @T099 @conformance_agent @approvals
  Scenario Outline: A run that needs approval completes when approved and is cancelled when declined
    Some actions, such as moving money, must wait for the user's yes. The completion records the
    decision; a "no" must stop the action.

    Given Alice is connected
    When Alice starts an agent that needs her approval to transfer money
    And Alice <answers> the agent's request once it has waited for her answer
    Then Alice was asked for approval, and the agent waited for her answer
    And Alice's run completes with status <status>
    And Alice's completion lists the approval she <answered>
    And the agent <did what> after Alice answered

    Examples: Alice's answer
      | answers  | status    | answered | did what          |
      | approves | completed | gave     | made the transfer |
      | declines | cancelled | declined | did no work       |

  @T100 @conformance_agent
  Scenario: A failed step is rolled back, retried, and the run completes
    If one step of a booking fails, the steps already done are undone before trying again, so
    the user is never left with half a booking.

    Given Alice is connected
    When Alice starts an agent that books two items, fails the payment, rolls back and retries
    Then Alice sees each booking undone, newest first, after the failed payment
    And Alice's run completes with status completed
    And Alice's completion records the tool errors she saw as recovered from
