Feature: Tool results are reported: the user sees how every tool call ended and what it produced
  In order to rely on the results an agent builds its answer from
  As a user of an AI chat product
  I want every tool call to end with one clear report of its status, result, timing and provenance

  @T061 @reference_agents
  Scenario: The calculator reports success with the result 84
    The intermediate result is what the user checks the final answer against.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice's calculator call succeeds with the result 84

  @T062 @conformance_agent
  Scenario: A tool result carries its name, call, status, result, duration, metadata and version, as published
    Client applications are built against the published format; every field they rely on must be there.

    Given Alice is connected
    When Alice starts an agent that calculates "12*(3+4)" to price the order
    Then Alice's calculator completion has its name, call id, status, result, duration, metadata and tool version
    And Alice's tool events validate against the published schemas

  @T063 @conformance_agent
  Scenario: Every announced tool call of a multi-tool run is closed by exactly one result
    A tool shown as running forever, or finishing twice, makes the progress view wrong.

    Given Alice is connected
    When Alice starts an agent that uses five tools, two of them in parallel
    Then every tool call Alice saw announced completes exactly once, afterwards, with the same call id

  @T064 @timing @conformance_agent
  Scenario: A tool that takes 300 ms reports a duration that matches its event times
    Durations shown to users and used for billing must agree with what actually happened.

    Given Alice is connected
    When Alice starts an agent that waits 300 ms in a tool
    Then Alice's wait call reports a duration between 300 and 600 ms that agrees with its event times

  @T065 @conformance_agent
  Scenario: A very large tool result arrives summarized, in a small message
    A 200 KB result would stall a chat screen; a summary with counts keeps it fast and honest.

    Given Alice is connected
    When Alice starts an agent that parses a very large attached file of figures
    Then Alice receives the first figures of the file, and how many there are in all
    And the file's result reaches Alice in a message small enough for a chat screen

  @T066 @conformance_agent
  Scenario: A search with no hits succeeds with an empty result
    Finding nothing is an answer, not a failure; showing an error would mislead the user.

    Given Alice is connected
    When Alice starts an agent that searches for something the corpus does not contain
    Then Alice's search call succeeds with an empty result and no error

  @T067 @conformance_agent @custom_tools
  Scenario: A custom tool whose result breaks its declared schema is reported as an error
    Customers who declare what their tool returns are protected from malformed results.

    Given Alice is connected
    When Alice starts an agent that defines a discount tool checked against a result schema and calls it with a valid and an invalid price
    Then Alice's first custom.discount call succeeds with the result 90
    And Alice's second custom.discount call ends with status error and the code "invalid_result"

  @T068 @conformance_agent
  Scenario: A batch tool streams its partial results before it completes
    Long jobs show their progress batch by batch, so the user sees work being done.

    Given Alice is connected
    When Alice starts an agent that runs a batch job of 4 batches
    Then Alice receives 4 progress updates with partial results, in order, before the batch_job completes

  @T069 @conformance_agent
  Scenario Outline: JSON, CSV, text and number results each say what format they are in
    Client applications display a table, a text or a number correctly only if they know its format.

    Given Alice is connected
    When Alice starts an agent that <produces a result>
    Then Alice's tool result says it is in the <format> format

    Examples: Results
      | produces a result           | format |
      | searches the knowledge base | json   |
      | reads an attached CSV file  | csv    |
      | reads an attached text file | text   |
      | calculates a number         | number |

  @T070 @reference_agents
  Scenario: Search results carry a confidence between 0 and 1
    A confidence score tells the user how far to trust what was found.

    Given Alice is connected
    When Alice asks the research agent "Tell me about the planet Mars"
    Then Alice's search results carry a confidence between 0 and 1

  @T071 @reference_agents
  Scenario: Research results cite their sources in the tool result and in the final answer
    Citations let users verify an answer at its source.

    Given Alice is connected
    When Alice asks the research agent "Tell me about the planet Mars"
    Then Alice's search call cites its corpus sources
    And Alice's final result cites the same sources

  @T072 @security @conformance_agent
  Scenario: A tool result containing an email and a card number arrives redacted
    Personal data found inside documents must never be shown in the chat.

    Given Alice is connected
    When Alice starts an agent that reads an attached note containing an email and a card number
    Then Alice's process_file result shows the email and card number redacted
    And nothing Alice received shows the email or the card number

  @T073 @conformance_agent
  Scenario: The same call made twice is answered from the cache the second time, with the same result
    Reusing a result saves time and cost, and users can see when a result was reused.

    Given Alice is connected
    When Alice starts an agent that calculates "17*23" twice
    Then Alice's first calculator call is not from the cache and the second is, with the same result

  @T074 @conformance_agent
  Scenario: Every result names its tool version, and repeated calls count up their result version
    Support teams can tell which tool version produced a result and which repetition it was.

    Given Alice is connected
    When Alice starts an agent that calculates "2+2" three times and searches once
    Then every tool completion Alice received names its tool version
    And Alice's repeated calculator calls have result versions 1, 2, 3

  @T075 @conformance_agent
  Scenario: A tool that builds on another tool's result names the call it continues
    Users can trace a figure back through every tool that produced it.

    Given Alice is connected
    When Alice starts an agent that computes a principal and feeds it into compound interest
    Then Alice's finance call names the calculator call it continues
    And Alice's finance call's principal is the calculator's result

  @T076 @conformance_agent
  Scenario: Tool results and the final answer carry recommended next steps
    Suggested next steps turn an answer into a conversation and keep users engaged.

    Given Alice is connected
    When Alice starts an agent that recommends next steps after its tools and at the end
    Then Alice's tool completions carry the agent's recommended next steps
    And Alice's final result carries recommended next steps

  @T077 @conformance_agent @approvals
  Scenario: A tool that needs the user's approval runs only after she approves it
    Sensitive actions such as payments happen only with the user's explicit consent.

    Given Alice is connected
    When Alice starts an agent that pays an invoice only after her approval
    And Alice approves the payment when the agent asks for it
    Then Alice sees the approval request, her answer accepted, and only then the payment tool's events
    And Alice's run completes with status completed

  @T078 @conformance_agent
  Scenario: Five tools running together each report their result before the run ends
    Parallel work is only trustworthy if every branch reports back before the final answer.

    Given Alice is connected
    When Alice starts an agent that runs five tools at once
    Then Alice receives 5 tool completions, each matching one of the 5 calls, before the run completes

  @T079 @conformance_agent
  Scenario: A failed step rolls back the earlier tool call it depended on
    A booking that cannot be paid has its reservation undone, and the user sees which one.

    Given Alice is connected
    When Alice starts an agent that reserves seats, fails to take the payment and rolls back
    Then Alice sees the reservation undone with status rolled_back, naming the call it compensates
    And Alice sees that the failed payment is not rolled back

  @T080 @conformance_agent @audit_query
  Scenario: Every tool result delivered to a user is in the audit log with her user and connection
    Compliance needs proof of which results reached which user, on which connection.

    Given Alice is connected
    When Alice starts an agent that uses the calculator, then search, then finance
    Then every tool completion Alice received is in the audit log with her user and connection
