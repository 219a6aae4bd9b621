@conformance_agent
Feature: Resilience: runs survive broken parts of the service
  In order to rely on my agents' answers even when part of the service fails
  As a user of an AI chat product
  I want my runs to finish and reach me whole when a server, the database or the message bus restarts

  @T111 @load @slow @process_stats
  Scenario: Gateway memory returns to its baseline after thousands of events over many connections
    The service runs for months. Memory that is not given back after a busy hour would
    eventually take it down for everyone.

    Given the gateways are at rest
    And a crowd of 100 users is connected
    When everyone in the crowd starts an agent that calls a tool 40 times with a 4000-character value
    And everyone in the crowd leaves once their run has finished
    Then everyone in the crowd received their whole run
    And the gateways give back the memory and the connections the crowd used

  @T112 @fault @fault_control @archive_query
  Scenario: The database restarts mid-run without losing an event, live or in the archive
    The database keeps the long-term record. Its restart must neither interrupt what the user
    is watching nor leave holes in the history kept for later.

    Given Alice is connected
    When Alice starts an agent that thinks 12 times, pausing 0.15 s between thoughts
    And the database is killed while Alice's agent is thinking
    And the database comes back
    Then Alice receives every event of her run exactly once and in order
    And the archive holds every event of Alice's run, as delivered

  @T113 @fault @fault_control
  Scenario: The message bus restarts mid-run and the user, after catching up, has every event once
    The message bus carries every event. Its restart may pause the stream, but after catching up
    the user must have the whole run, nothing doubled.

    Given Alice is connected
    When Alice starts an agent that thinks 10 times, pausing 0.3 s between thoughts
    And the message bus is killed while Alice's agent is thinking
    And the message bus stays down for 1.5 seconds
    And the message bus comes back
    And Alice asks to catch up on the same connection
    Then Alice receives every event of her run exactly once and in order
    And some of Alice's events were produced while the message bus was down
    And Alice's run completes with status completed

  @T114 @fault @fault_control
  Scenario: A worker restarted during a deployment finishes its run before it stops
    Deployments restart workers all the time. A run in progress must be finished, not cut off;
    the user must see all of it.

    Given Alice is connected
    When Alice starts an agent that thinks 8 times, pausing 0.3 s between thoughts
    And the worker running Alice's agent is restarted gracefully
    Then Alice's run finished before its worker exited
    And Alice receives every event of her run exactly once and in order

  @T115 @fault @multi_gateway @fault_control
  Scenario: A gateway crash moves the user to another gateway without losing anything
    A server can crash at any moment. The user's app must land on another server and continue
    the conversation where it stopped.

    Given Alice is connected
    When Alice starts an agent that thinks 10 times, pausing 0.3 s between thoughts
    And the gateway holding Alice's connection is killed
    And Alice reconnects through the load balancer and catches up
    Then Alice is now served by the other gateway
    And Alice receives every event of her run exactly once and in order
