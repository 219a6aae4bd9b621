Feature: The golden path: a user sees every step of an agent's work
  In order to trust an answer while it is being prepared
  As a user of an AI chat product
  I want to see the agent start, think, use its tools and finish, in that order

  @golden
  Scenario: A user asks the math agent a question and follows the whole run
    The five events are the user's window into the agent. Without them the chat looks frozen;
    a missing or misordered one makes the answer look unreliable.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice receives agent_started within 500 ms
    And Alice receives the run's events in the order agent_started, agent_thinking, agent_thinking, tool_executing, tool_completed, agent_completed
    And every event Alice received has the full envelope for her thread
    And Alice's run completes with result 84
