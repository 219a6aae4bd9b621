Feature: Security: each user's events stay private, protected and accounted for
  In order to trust the service with my questions and my data
  As a user of an AI chat product
  I want my events encrypted on the wire, shaped by my permissions, free of my personal data,
  recorded for audit, and out of reach of anyone else

  @T116 @security @reference_agents @tls
  Scenario: Over TLS the conversation cannot be read on the wire
    Anyone on the network path could otherwise read what the user asks and the token that
    proves who she is.

    Given Alice is connected over TLS through a recorded link
    And Bob is connected without TLS through a recorded link, uncompressed
    When Alice asks the math agent "What is 12*(3+4)? codeword marmalade-sunrise"
    And Bob asks the math agent "What is 12*(3+4)? codeword marmalade-sunrise"
    Then Alice's run completes with result 84
    And the recording of Alice's encrypted link shows neither her question nor her token
    And the recording of Bob's plain link shows his question and his token

  @T117 @security @reference_agents @conformance_agent
  Scenario: Only users allowed to query the database see queries and rows, and only the company's data
    Database access is a paid, controlled capability. Users without it must not see queries or
    company data in their event stream, and users with it must not reach anyone's conversations.

    Given Alice holds the "tools:sql" permission
    And Alice is connected
    And Bob is connected
    When Alice asks the data_analyst agent "How many customers do we have?"
    And Bob asks the data_analyst agent "How many customers do we have?"
    Then Alice sees the SQL query and the rows it returned
    And Bob sees no SQL call and no database rows
    When Alice starts an agent that tries to read other users' conversations through the database tool
    Then every one of Alice's database queries is refused as sql_not_allowed and shows her nothing of Bob's conversation

  @T118 @security @conformance_agent @audit_query
  Scenario: Every event delivered to a user is recorded in the audit log
    Compliance needs proof of what was shown to whom, on which connection.

    Given Alice is connected
    And Bob is connected
    When Alice starts an agent that uses the calculator, then search, then finance
    And Bob starts an agent that thinks 3 times, 0.2 seconds apart
    Then every event Alice received is in the audit log with her user id and connection id
    And every event Bob received is in the audit log with his user id and connection id

  @T119 @security @reference_agents @archive_query
  Scenario: Personal data in a question never leaves the service nor reaches the archive
    Users paste emails, card numbers and tokens into questions. They must never be echoed back,
    shown to anyone, or stored.

    Given Alice is connected
    And Bob is connected
    When Alice asks the research agent about a refund, giving her email, card number and an access token
    And Bob asks the math agent "What is 6*7?"
    Then no frame that any connection received contains her personal data
    And Alice sees her email, card number and token marked as redacted
    And the archive of Alice's run holds every event and none of her personal data

  @T120 @security @conformance_agent @approvals
  Scenario Outline: Attempts to hijack another user's run, or to use forged or revoked tokens, are refused
    A user's conversation and the agent's actions belong to her alone. Nobody else may watch,
    stop or answer for it, and stolen or forged credentials must not open the door.

    Given Alice is connected
    And Mallory is connected
    When Alice starts an agent that waits for her approval
    And <an intruder tries to get at Alice's run>
    And Alice approves her agent's request
    Then <the intruder is turned away>
    And Mallory learns nothing about Alice's run
    And Alice's run completes with status completed
    And Alice's run records her own approval

    Examples: Intrusions
      | an intruder tries to get at Alice's run                        | the intruder is turned away                             |
      | Mallory tries to follow, replay, cancel and answer Alice's run | every one of Mallory's attempts is refused as forbidden |
      | someone connects as Alice with a token signed with another key | the handshake is refused with HTTP 401                  |

    @token_revocation
    Examples: A token revoked while in use
      | an intruder tries to get at Alice's run                               | the intruder is turned away            |
      | someone connects as Alice with one of her tokens after it was revoked | the handshake is refused with HTTP 401 |
