Feature: The agent starts: the user sees at once that work on her request has begun
  In order to know that my request was taken up, by the right agent, for me alone
  As a user of an AI chat product
  I want the agent's start announced quickly, to me and to nobody else, whatever happens around it

  @T001 @timing @reference_agents
  Scenario: A user starting the triage agent sees it start within two seconds
    The start notice is the first sign of life after pressing "send". When it is late, people
    resend their request or leave.

    Given Alice is connected
    When Alice asks the triage agent "Which agent can help me compare phone plans?"
    Then Alice receives agent_started within 2 seconds
    And Alice's run follows the lifecycle

  @T002 @timing @conformance_agent
  Scenario: The start notice follows the request within half a second
    Half a second is where a product stops feeling instant. The figure is measured and kept with
    the results, so a slow drift shows long before users complain.

    Given Alice is connected
    When Alice starts an agent that thinks once
    Then Alice receives agent_started within 500 ms
    And Alice's run follows the lifecycle

  @T003 @conformance_agent
  Scenario: The start notice says which run, conversation, user and agent it is about
    Client applications file each notice under the right conversation and show which agent is
    at work; a notice that does not match the published format breaks them.

    Given Alice is connected
    When Alice starts an agent that thinks once
    Then Alice's agent_started names her run, her conversation, herself and the scripted agent
    And every event Alice received has the full envelope for her conversation
    And every agent_started Alice received matches the published schema

  @T004 @isolation @reference_agents
  Scenario: Each of a user's devices receives only the conversation it started
    People use a laptop and a phone at the same time. A conversation started on one device must
    not spill into the other, or the wrong answer appears in the wrong place.

    Given Alice is connected on her laptop and on her phone
    When Alice asks the math agent "What is 12*(3+4)?" from her laptop
    And Alice asks the research agent "Why is Mars red?" from her phone
    Then Alice's laptop receives only the events of its own conversation, complete
    And Alice's phone receives only the events of its own conversation, complete

  @T005 @isolation @security @reference_agents
  Scenario: Two users starting agents at the same moment each see only their own
    Requests that arrive together are where crossed wires happen. One user seeing another's run,
    or even its identifiers, is a privacy breach.

    Given Alice and Bob are connected to the same gateway
    When Alice and Bob ask the math agent "What is 12*(3+4)?" at the same moment
    Then Alice receives nothing from Bob's conversations
    And Bob receives nothing from Alice's conversations
    And neither Alice nor Bob sees any identifier of the other's runs
    And Alice's run follows the lifecycle
    And Bob's run follows the lifecycle

  @T006 @isolation @conformance_agent
  Scenario: A connection lost right after the request still gets the start notice exactly once
    Mobile connections drop at the worst moment. Coming back, the user must see the run from its
    start, with nothing missing and nothing shown twice.

    Given Alice is connected
    When Alice starts an agent that thinks 4 times, 0.3 seconds apart
    And Alice's connection drops
    And Alice reconnects and resumes her conversation from the very beginning
    Then Alice's new connection receives agent_started exactly once
    And Alice's new connection receives the whole run exactly once, in order

  @T007 @security @conformance_agent
  Scenario Outline: Forged, expired and missing credentials are turned away at the door
    Only the owner of a conversation may watch it. Anybody presenting a fake, stale or no pass
    is refused before seeing anything, and the owner's run is not disturbed.

    Given Alice is connected
    And Mallory is connected
    When Alice starts an agent that thinks 3 times, 0.2 seconds apart
    And Mallory tries to connect as Alice <with what pass>
    Then Mallory is turned away with HTTP 401
    And Alice's run follows the lifecycle
    And Mallory receives nothing from Alice's conversations

    Examples: Passes that do not open the door
      | with what pass        |
      | with a forged token   |
      | with an expired token |
      | without a token       |

  @T008 @isolation @reference_agents
  Scenario: Three requests sent at once become three separate runs
    Impatient users click twice or ask several things at once. Each request deserves its own run
    in its own conversation, announced once.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?" 3 times at once
    Then Alice's 3 runs each have their own run id and conversation
    And each of Alice's runs receives exactly one agent_started, in its own conversation
    And each of Alice's runs follows the lifecycle

  @T009 @conformance_agent
  Scenario: An agent that cannot be created is reported as a failure, not as a start
    Announcing a start for an agent that never ran would leave the user waiting forever. An honest
    error and a failed ending let the product offer a retry.

    Given Alice is connected
    When Alice starts an agent that cannot be created
    Then Alice sees an error instead of a start, and then the end of her run
    And the error tells Alice that the agent could not start
    And Alice's run completes with status failed

  @T010 @fault @conformance_agent @fault_control
  Scenario: A gateway restarted during a run costs the user nothing
    Servers are updated while people are mid-conversation. The user reconnects through the load
    balancer and continues where she was, without gaps or repeats.

    Given Alice is connected
    When Alice starts an agent that thinks 8 times, 0.5 seconds apart
    And the gateway holding Alice's connection restarts after her first thought
    And Alice reconnects and resumes her conversations
    Then Alice receives every event of her run exactly once across her connections

  @T011 @load @timing @reference_agents
  Scenario: Fifty users starting at the same moment all see their start promptly
    Traffic comes in waves: at nine o'clock many people ask at once. Every one of them must see the
    start as quickly as a lone user would; the spread is measured and kept.

    Given 50 people are connected
    When each of them asks the triage agent "Which agent should answer this?" at the same moment
    Then every one of them receives agent_started within 2 seconds
    And at least 95 % of them receive it within 500 ms

  @T012 @reference_agents
  Scenario Outline: An incomplete or unknown agent request is explained and does no harm
    Integrators make mistakes. A clear answer naming what is wrong saves them hours, and one bad
    request must not break the connection for the good ones that follow.

    Given Alice is connected
    When Alice <asks wrongly>
    And Alice asks the math agent "What is 12*(3+4)?" on the same connection
    Then Alice is told <what is wrong>
    And Alice's mistaken request started no run
    And Alice's run completes with result 84

    Examples: Mistakes integrators make
      | asks wrongly                                              | what is wrong                                              |
      | asks to start an agent without saying which one           | her request is malformed because the agent type is missing |
      | asks for the "fortune_teller" agent, which does not exist | the agent is unknown, with the list of agents she can use  |

  @T013 @fault @reference_agents @fault_control @archive_query
  Scenario: A paused database does not delay the start, and the history catches up afterwards
    The database keeps the record, not the live conversation. While it is unavailable users must
    not notice, and once it is back the record must be complete.

    Given Alice is connected
    And the database is paused
    When Alice asks the math agent "What is 12*(3+4)?"
    And the database resumes once Alice's run has ended
    Then Alice receives agent_started within 500 ms
    And Alice's run completes with result 84
    And the archive holds every event of Alice's run, exactly as she received it

  @T014 @isolation @reference_agents
  Scenario: Five users starting the same agent each get exactly one start notice of their own
    Popular agents are started by many people at once. Each person must get one start notice for
    their own conversation, never a neighbour's, never two.

    Given 5 people are connected
    When each of them asks the research agent "Where is Olympus Mons?" at the same moment
    Then each of them receives exactly one agent_started, for their own conversation
    And each of them receives nothing of the others' runs

  @T015 @security @conformance_agent
  Scenario: Only users allowed to script agents can start the scripted agent
    Scripted agents are a developer tool. Ordinary users are told which permission they lack and
    nothing starts; developers holding it are served normally.

    Given Bob holds the "agents:script" permission
    And Alice holds no permission
    And Alice is connected
    And Bob is connected
    When Alice and Bob each try to start an agent that thinks once
    Then Alice is refused because she lacks the "agents:script" permission
    And Alice receives no agent_started
    But Bob receives agent_started within 2 seconds

  @T016 @isolation @reference_agents
  Scenario: A device follows a conversation only for as long as it asks to
    Opening a conversation on a second device should show its next answers there; closing it
    should stop them, while the device that started it keeps receiving everything.

    Given Alice is connected on her laptop and on her phone
    And Alice has asked the triage agent "Which agent can plan a trip?" from her laptop
    When Alice's phone follows that conversation
    And Alice asks the triage agent "And which one can book it?" again in that conversation from her laptop
    And Alice's phone stops following that conversation
    And Alice asks the triage agent "Thanks, that is all." again in that conversation from her laptop
    Then Alice's phone received the run asked while it followed the conversation, once and whole
    And Alice's phone received nothing of the run asked after it stopped following
    But Alice's laptop received every run of the conversation whole

  @T017 @isolation @reference_agents
  Scenario: Two agents working for one user at once keep their conversations apart
    Power users run several agents side by side in one window. Each notice must land in its own
    conversation, announce the right agent and keep that conversation's numbering intact.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?" and the research agent "Why is Mars red?" at the same time
    Then every event of Alice's runs is labelled with its own conversation
    And each conversation's start names the agent that runs in it
    And Alice's events are numbered without gaps or repeats
    And each of Alice's runs follows the lifecycle

  @T018 @security @conformance_agent
  Scenario: A user whose pass expires mid-run stays connected only if she renews it
    Long runs outlast short-lived credentials. Renewing in place must keep the conversation
    flowing; not renewing must end the connection with a reason the app understands.

    Given Alice is connected with a token that expires in 3 seconds
    And Bob is connected with a token that expires in 3 seconds
    When Alice starts an agent that thinks 8 times, 0.9 seconds apart
    And Bob starts an agent that thinks 8 times, 0.9 seconds apart
    And Alice refreshes her token
    Then Bob's connection is closed because his token expired
    And Alice receives every event of her run on the same connection, after her first token expired

  @T019 @load @serial @conformance_agent @process_stats
  Scenario: Connections that come and go leave no trace on the gateways
    Every visit opens a connection and every departure must give back what it used. Leftovers pile
    up over a day of traffic until a gateway refuses newcomers.

    Given the gateways are at rest
    When 200 visitors connect and then leave
    Then the gateways count none of the visitors as connected any more
    And the gateways hold nothing the visitors used

  @T020 @isolation @reference_agents @source_addresses
  Scenario: Users connecting from different networks and regions all get complete runs
    Customers reach us from many networks and regions. Where someone connects from must not change
    what they receive: the whole run, in order.

    Given these people are connected from their own addresses and regions
      | person | address   | region         |
      | Alice  | 127.0.0.2 | eu-west-1      |
      | Bob    | 127.0.0.3 | us-east-1      |
      | Chen   | 127.0.0.4 | ap-southeast-2 |
    When each of them asks the math agent "What is 12*(3+4)?" at the same moment
    Then each of them receives a complete run, in order
    And each of them receives nothing of the others' runs
