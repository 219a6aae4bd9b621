Feature: The agent thinks aloud: the user follows its reasoning as it happens
  In order to understand and trust how an answer is being reached
  As a user of an AI chat product
  I want to see the agent's reasoning steps promptly, in order, readable, complete and safe

  @T021 @conformance_agent
  Scenario: An agent reasoning in five steps shows five thoughts between start and finish
    Seeing each step of the reasoning is what makes a slow answer feel like progress rather than
    a frozen screen.

    Given Alice is connected
    When Alice starts an agent that reasons in 5 steps
    Then Alice sees 5 thoughts, one for each step, between the start and the end of her run
    And each of Alice's thoughts has something to say

  @T022 @conformance_agent
  Scenario: Every thought has its text, its step number and its details in the published format
    Client applications render thoughts from a documented format. A missing field or a wrong type
    shows up as a blank or broken bubble in the chat.

    Given Alice is connected
    When Alice starts an agent that reasons in 5 steps
    Then each of Alice's thoughts has its text, a step number from 1 and a details object
    And every agent_thinking Alice received matches the published schema

  @T023 @timing @conformance_agent
  Scenario: A flood of thoughts is condensed without losing the latest one
    An agent that thinks faster than anyone can read would flood the screen and the network.
    Condensing keeps the chat readable while the most recent thought is always shown.

    Given Alice is connected
    When Alice starts an agent that thinks 500 times as fast as it can
    Then Alice receives at most 100 thoughts for the 500 updates
    And Alice's last thought stands for several updates and shows the text of update 500
    And the thoughts Alice received account for all 500 updates

  @T024 @conformance_agent
  Scenario: Thoughts arrive numbered and in the order they were reasoned
    Reasoning read out of order makes no sense. The numbering lets the app show progress such as
    "step 3 of 5".

    Given Alice is connected
    When Alice starts an agent that reasons in 5 steps
    Then Alice's thoughts arrive numbered 1 to 5, in the order they were reasoned

  @T025 @reference_agents
  Scenario: A follow-up question continues the conversation and the agent remembers it
    A follow-up belongs to the same conversation: its events continue the conversation's numbering,
    while the agent shows that it takes the earlier exchange into account.

    Given Alice is connected
    And Alice has asked the triage agent "Which agent can plan my week?" and seen the answer
    When Alice asks the triage agent "And which one can book a meeting?" in the same conversation
    Then Alice's second run continues the conversation's numbering
    And Alice's second run refers to the earlier run in its thinking

  @T026 @conformance_agent
  Scenario Outline: Reasoning in Japanese, Arabic, German and emoji arrives exactly as written
    Our users think and write in many scripts. A single mangled character makes the agent look
    careless, or changes the meaning.

    Given Alice is connected
    When Alice starts an agent that reasons in <writing>
    Then Alice receives her <writing> thought exactly as it was written

    Examples: Writings
      | writing  |
      | Japanese |
      | Arabic   |
      | German   |
      | emoji    |

  @T027 @timing @conformance_agent
  Scenario: Each thought reaches the user within 200 ms of being produced
    Thoughts that trail behind the agent feel like a replay rather than live reasoning. The
    largest delay is measured and kept.

    Given Alice is connected
    When Alice starts an agent that thinks 10 times, 0.1 seconds apart
    Then each of Alice's thoughts reaches her within 200 ms of being stamped

  @T028 @conformance_agent
  Scenario: A short burst of forty thoughts arrives complete and in order
    Short bursts are normal when an agent lists what it considered. Below the condensing threshold
    every single thought must be shown, in order, with none missing.

    Given Alice is connected
    When Alice starts an agent that thinks 40 times in a quick burst
    Then Alice receives all 40 thoughts of the burst, in order
    And Alice's events are numbered without gaps or repeats

  @T029 @slow @timing @conformance_agent
  Scenario: A long analysis keeps the user updated for more than a minute
    Some analyses take minutes. The connection must stay open through quiet spells and each
    update must arrive on time, so the user knows the agent is still working.

    Given Alice is connected
    When Alice starts an agent that thinks every 5 seconds for 65 seconds
    Then Alice's connection stays open for the whole run
    And every one of Alice's 14 thoughts arrives, none more than 6 seconds after the previous one

  @T030 @slow @serial @load @conformance_agent @multi_gateway @process_stats
  Scenario: A gateway streaming five thousand thoughts does not grow in memory
    A gateway serves thousands of thoughts an hour. If each one left a little memory behind, the
    gateway would eventually fail for everyone connected to it.

    Given 20 people are connected to the same gateway
    When they receive 5000 thoughts between them and then leave
    Then the gateway has kept no memory for what it delivered

  @T031 @conformance_agent
  Scenario: A network cut in the middle of the reasoning loses no thought
    Wi-Fi drops and tunnels happen. After reconnecting, the user must see every thought exactly
    once, as if the connection had never been lost.

    Given Alice is connected through an unreliable network
    When Alice starts an agent that thinks 8 times, 0.4 seconds apart
    And the network link to Alice is cut after her second thought
    And Alice reconnects through the same network and resumes her conversations
    Then Alice receives each of the 8 thoughts of her run exactly once
    And Alice receives every event of her run exactly once across her connections

  @T032 @isolation @conformance_agent
  Scenario: Two agents thinking at once for one user keep their thoughts apart
    With two agents working side by side, mixing up whose thought is whose would put one agent's
    reasoning under the other's answer.

    Given Alice is connected
    When Alice starts an agent that thinks 5 times as "planner", 0.2 seconds apart
    And Alice starts an agent that thinks 5 times as "critic", 0.2 seconds apart
    Then Alice's two agents thought at the same time
    And each of Alice's thoughts carries the run, conversation and agent its text came from

  @T033 @timing @conformance_agent
  Scenario: A run over its time limit stops promptly and hands over what it has
    Nobody should wait past the promised limit. When time runs out, the user gets a clear ending,
    the work done so far and the reason.

    Given Alice is connected
    When Alice starts an agent that drafts an answer, then works past its 1-second limit
    Then Alice's run completes with status timeout
    And Alice's run is stopped with status timeout within 500 ms after its 1-second limit
    And the timeout still delivers the draft and explains what happened

  @T034 @security @conformance_agent
  Scenario: Personal data in the agent's reasoning is hidden before it reaches the screen
    Agents read customer records. Their reasoning must never display an email address, a card
    number or a credential, not even in the data behind the screen.

    Given Alice is connected
    When Alice starts an agent that reasons about a customer's email, card number and access token
    Then Alice's thought shows the email, the card number and the token as redacted
    And none of those originals appears in any frame Alice received

  @T035 @conformance_agent
  Scenario: Structured details of a thought arrive unchanged
    Apps draw comparison tables and progress bars from the details attached to a thought. Changed
    or lost details would draw the wrong picture.

    Given Alice is connected
    When Alice starts an agent that reasons with structured details
    Then Alice's thought carries its phase, items and conclusion unchanged

  @T036 @conformance_agent
  Scenario: After an error the user sees the agent recover and finish
    Problems along the way are normal. Showing the problem, then how the agent works around it,
    builds more trust than hiding it or giving up.

    Given Alice is connected
    When Alice starts an agent that hits an error while reasoning and recovers
    Then Alice sees the agent think, hit the error, think again and finish, in that order
    And the error tells Alice the agent can carry on
    And the thought after the error explains the recovery
    And Alice's run completes with status completed

  @T037 @conformance_agent
  Scenario: A very long thought is shortened, and the user is told so
    A thought of many pages would swamp the chat. Cutting it to a readable length, visibly and with
    its real length stated, keeps the chat usable without pretending nothing was cut.

    Given Alice is connected
    When Alice starts an agent that has a 20000-character thought
    Then Alice's 20000-character thought arrives cut to 4000 characters with a truncation marker
    And Alice is told the thought was truncated from 20000 characters

  @T038 @reference_agents
  Scenario: Built-in agents say what kind of thinking each thought is, with sensible confidence
    Labels such as "plan" or "analysis" let apps style thoughts; a confidence outside 0 to 1 would
    show nonsense such as "140 % sure".

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    And Alice asks the triage agent "Which agent should handle my taxes?"
    Then every thought Alice received says what kind of thinking it is
    And every confidence in Alice's thoughts is a number between 0 and 1

  @T039 @reference_agents
  Scenario: In a team of agents every thought names the member who had it
    Where a coordinator, a researcher and a mathematician work together, users want to know who
    said what, as in a meeting.

    Given Alice is connected
    When Alice asks the team agent "What is 6*7, and why is Mars red?"
    Then Alice's thoughts come from the coordinator, the researcher and the mathematician, in that order
    And Alice's run follows the lifecycle

  @T040 @conformance_agent
  Scenario: A user who prefers concise thinking gets one sentence per thought
    Some people want the gist, others every detail. The same request shows each user the reasoning
    in the style they chose.

    Given Alice prefers concise thinking
    And Alice is connected
    And Bob is connected
    When Alice and Bob both start an agent that reasons at length
    Then Alice's thoughts are one sentence each and marked as concise
    And Bob's thoughts are the full text
