Feature: Delivery: every event reaches its user, once, in order, whatever the load or the network
  In order to follow my agents' work as it happens, on any network and at busy times
  As a user of an AI chat product
  I want every event of my runs delivered to me alone, complete, once and in the order it happened

  @T101 @load @slow @reference_agents
  Scenario: A hundred users run the math agent at the same moment and each sees their own run
    At peak time many people ask at once. Each must still see their own answer being worked out,
    completely and quickly, and never a stranger's.

    Given a crowd of 100 users is connected
    When everyone in the crowd asks the math agent "What is 12*(3+4)?" at the same moment
    Then everyone in the crowd receives exactly their own six events, in order
    And every whole run in the crowd arrives within 2 s

  @T102 @conformance_agent
  Scenario: A run that emits hundreds of mixed events quickly keeps their order
    A busy agent thinks, uses tools and recovers from hiccups in rapid succession. The user must
    read that story in the order it happened, or the reasoning makes no sense.

    Given Alice is connected
    When Alice starts an agent that emits 300 mixed events as fast as it can
    Then Alice receives all 300 events in the order her agent emitted them
    And Alice's events are numbered without gaps or repeats
    And the timestamps of Alice's events never go backwards

  @T103 @load @slow @reference_agents
  Scenario: Fifty users each run three agents at once and see only their own three conversations
    Power users keep several agents busy at once. Each conversation must stay whole and private
    even when a crowd does the same.

    Given a crowd of 50 users is connected
    When everyone in the crowd starts the math, triage and research agents at the same moment
    Then everyone in the crowd receives only their own three conversations, each complete
    And the time from request to the end of each run in the crowd is reported

  @T104 @conformance_agent
  Scenario: A user who loses her connection mid-run gets what she missed on reconnecting
    Mobile networks drop. When the user comes back, the conversation must continue exactly where
    it stopped: nothing missing, nothing twice.

    Given Alice is connected through a network link that can fail
    When Alice starts an agent that thinks 8 times, pausing 0.2 s between thoughts
    And Alice's network link fails after her agent has thought 3 times
    And Alice's agent carries on while she is offline
    And Alice reconnects and resumes her conversations
    Then Alice receives every event of her run exactly once and in order
    And Alice's new connection received the events she missed

  @T105 @security @conformance_agent
  Scenario: A user whose token expires during a long run refreshes it and misses nothing
    Long analyses outlive short-lived tokens. Refreshing the token must not interrupt the stream
    the user is watching.

    Given Alice is connected with a token that expires in 2 seconds
    When Alice starts an agent that thinks 10 times, pausing 0.6 s between thoughts
    And Alice refreshes her token
    Then Alice's connection stays open past her first token's expiry while her run arrives whole

  @T106 @conformance_agent
  Scenario: Asking twice to catch up from the same point delivers each missed event once
    An app may repeat its catch-up request after a hiccup. The user must not see the same step
    twice because of it.

    Given Alice is connected through a network link that can fail
    When Alice starts an agent that thinks 8 times, pausing 0.2 s between thoughts
    And Alice's network link fails after her agent has thought 3 times
    And Alice's agent carries on while she is offline
    And Alice reconnects and asks twice to catch up from the same point
    Then Alice receives every event of her run exactly once and in order
    And Alice's new connection received the events she missed

  @T107 @conformance_agent
  Scenario: Answers and errors overtake a long catch-up
    While a long conversation is being replayed, the app must still get quick answers: a
    keep-alive check or an error must not wait behind a thousand old events.

    Given Alice is connected
    When Alice starts an agent that calls a tool 600 times in a row
    And Alice catches up on the whole conversation on a new connection, at once pinging and sending a malformed request
    Then the answer to the ping and the error arrive before the catch-up ends
    And the catch-up still delivers every event of the conversation once, in order

  @T108 @conformance_agent
  Scenario: A large repetitive document is compressed on the wire
    Users on metered or slow connections pay for every byte. Repetitive data must travel
    compressed.

    Given Alice is connected through a recorded link
    When Alice starts an agent that hands a tool a repetitive 30 KB document
    Then compression was agreed for Alice's connection
    And the 30 KB document crossed Alice's link in less than half its size

  @T109 @security @reference_agents
  Scenario Outline: A user who overloads the service is held back without harming anyone else
    One misbehaving app or agent must not degrade the service for everyone else; it is told to
    slow down, or stopped, and others carry on.

    Given Bob is connected
    And <someone> is connected
    When Bob asks the math agent "What is 12*(3+4)?"
    And <someone overloads the service>
    Then <someone is held back>
    And Bob's run follows the lifecycle
    And Bob's run completes with result 84

    Examples: An app that floods the service
      | someone | someone overloads the service                        | someone is held back                             |
      | Mallory | Mallory floods the service with 100 messages at once | Mallory is told to slow down and stays connected |

    @conformance_agent
    Examples: An agent over its event budget
      | someone | someone overloads the service                               | someone is held back                                                                        |
      | Carol   | Carol starts an agent that calls a tool 1500 times in a row | Carol's agent is stopped at the free tier's budget of 2000 events and her run ends degraded |

  @T110 @reference_agents
  Scenario Outline: Users on slow networks still receive complete, ordered runs
    Users far away or on poor networks must see the same complete story, only later.

    Given Alice is connected through a link with <latency> of added latency
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice receives her whole run, complete and in order

    Examples: Added latency
      | latency |
      | 50 ms   |
      | 150 ms  |
      | 300 ms  |
