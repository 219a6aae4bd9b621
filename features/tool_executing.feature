Feature: Tool calls are announced: the user sees which tool an agent uses, with what, and why
  In order to understand and trust what an agent does on my behalf
  As a user of an AI chat product
  I want every tool call announced with its tool, its parameters and its purpose, and every failure explained

  @T041 @reference_agents
  Scenario: The math agent announces the calculator with its category and purpose
    Naming the tool, its domain and the reason tells the user the agent is computing the
    answer rather than guessing it.

    Given Alice is connected
    When Alice asks the math agent "What is 12*(3+4)?"
    Then Alice sees the calculator announced in the math category with its purpose

  @T042 @security @conformance_agent
  Scenario: Tool parameters are shown, with sensitive values redacted
    Users can check what the agent computes and looks up, without their customers' personal
    data being shown back on screen.

    Given Alice is connected
    When Alice starts an agent that calculates "12*(3+4)" and then searches for a customer's email and card number
    Then Alice sees the calculator announced with the expression "12*(3+4)"
    And Alice sees the search query with the email and card number redacted
    And nothing Alice received shows the email or the card number

  @T043 @conformance_agent
  Scenario: Three different tools used one after another are announced in that order
    A step-by-step view only makes sense when each step is shown in the order it happens,
    each one finishing before the next begins.

    Given Alice is connected
    When Alice starts an agent that uses the calculator, then search, then finance
    Then Alice sees the tools calculator, search, finance announced in that order
    And each of Alice's tool calls completes before the next one is announced

  @T044 @timing @conformance_agent
  Scenario: Three tools run in parallel are all announced up front and finish sooner than one after another
    An agent working on several things at once shows all of them starting, and gets
    the answer sooner than if they had run in turn.

    Given Alice is connected
    When Alice starts an agent that runs two slow tools and the calculator in parallel
    Then Alice sees all 3 tool calls announced before any slow one completes
    And Alice's 3 tool calls have distinct call ids
    And Alice's run takes less than the sum of its tool durations

  @T045 @timing @conformance_agent
  Scenario: A tool announcement reaches the user within 100 ms
    The progress view feels live only if the user learns about a tool call the moment it starts.

    Given Alice is connected
    When Alice starts an agent that calculates 5 different sums one after another
    Then Alice receives each tool announcement within 100 ms of its timestamp

  @T046 @reference_agents
  Scenario: The triage agent answers without tools and reports zero tool calls
    A quick answer that used no tool must not show tool activity, so the activity shown can be trusted.

    Given Alice is connected
    When Alice asks the triage agent "Which agent should help me plan a trip?"
    Then Alice receives no tool events in the run
    And Alice's run reports 0 tool calls

  @T047 @reference_agents
  Scenario: The data analyst shows which dataset and operation it analyses, and its processing steps
    Analysts want to know which data an answer is based on and how it was processed.

    Given Alice is connected
    When Alice asks the data_analyst agent "Summarize the sales data"
    Then Alice sees the analyze_data announced with the dataset "sales"
    And Alice sees the analyze_data announced with the operation "summary"
    And Alice's analyze_data completion lists its processing steps

  @T048 @security @reference_agents
  Scenario: The research agent shows its search query, with an email in it redacted
    Users see what the agent searches for, while an address they typed is not shown back.

    Given Alice is connected
    When Alice asks the research agent "What does jane.roe@example.com need to know about Mars?"
    Then Alice sees the search announced with the query "What does [REDACTED:email] need to know about Mars?"
    And nothing Alice received shows "jane.roe@example.com"

  @T049 @conformance_agent
  Scenario: A calculator call shows the expression and why the agent calculates it
    Showing the purpose next to the numbers lets the user follow the agent's reasoning.

    Given Alice is connected
    When Alice starts an agent that calculates "1200*12" to work out the yearly rent
    Then Alice sees the calculator announced with the expression "1200*12"
    And Alice sees the calculator announced for the purpose "work out the yearly rent"
    And Alice's calculator call succeeds with the result 14400

  @T050 @conformance_agent
  Scenario: An attached CSV file is processed, named, counted and its progress reported
    Users who upload a spreadsheet see that the right file was read, and all of it.

    Given Alice is connected
    When Alice starts an agent that processes an attached CSV file "q3-sales.csv" of 4 rows
    Then Alice sees the process_file announced with the file "q3-sales.csv"
    And Alice's process_file call reports 4 rows and its processing steps

  @T051 @conformance_agent @callbacks
  Scenario: The HTTP API tool calls a service on loopback and reports its answer
    Integrations are only trustworthy when the user sees which service was asked and what it answered.

    Given Alice holds the "tools:http" permission
    And a weather service answers on a loopback port
    And Alice is connected
    When Alice has an agent fetch the forecast from the weather service
    Then Alice sees the http_api announced with the path "/forecast"
    And Alice's http_api call names the weather service by host and port
    And Alice's http_api call returns the weather service's answer

  @T052 @conformance_agent
  Scenario: A SQL query on the demo database shows the query and returns columns and rows
    Data teams can verify an answer by reading the exact query and its rows.

    Given Alice holds the "tools:sql" permission
    And Alice is connected
    When Alice starts an agent that queries the first 3 customers from the demo database
    Then Alice sees the agent's query in the sql_query announcement
    And Alice's sql_query call returns the columns id, name, country and the first 3 customers

  @T053 @conformance_agent
  Scenario: The finance tool computes compound interest correctly
    A finance answer is only useful if the figure is right to the cent.

    Given Alice is connected
    When Alice starts an agent that computes compound interest on 1000 at 5% for 10 years
    Then Alice sees the finance announced in the finance category with its purpose
    And Alice's finance call succeeds with the result 1647.01

  @T054 @conformance_agent @custom_tools
  Scenario: A tool the user defines in the request runs as a custom tool
    Customers extend agents with their own tools and must be able to tell them apart from ours.

    Given Alice is connected
    When Alice starts an agent that defines and uses its own greeting tool
    Then Alice sees the custom.greet announced in the custom category with its purpose
    And Alice's custom.greet call is marked as a custom tool
    And Alice's custom.greet call succeeds with the result "Hello, Ada!"

  @T055 @conformance_agent
  Scenario: A failing tool is reported with its error code, and the agent recovers
    A failure explained with a code, followed by the recovery, keeps the user's confidence in the run.

    Given Alice is connected
    When Alice starts an agent that calls a failing tool and then recovers with the calculator
    Then Alice's fail call ends with status error and the code "upstream_unavailable"
    And afterwards Alice sees the calculator tool succeed
    And Alice's run completes with status completed

  @T056 @timing @conformance_agent
  Scenario: A tool over its time limit is reported promptly, then an alternative tool is used
    A hung tool must not freeze the conversation: the user hears about it at once and sees the fallback.

    Given Alice is connected
    When Alice starts an agent that waits 5 seconds in a tool limited to 500 ms and then uses the calculator instead
    Then Alice's wait call ends with status timeout within 1000 ms of its announcement
    And afterwards Alice sees the calculator tool succeed
    And Alice's run completes with status completed

  @T057 @conformance_agent
  Scenario: Invalid tool parameters are refused with the problem named, and a corrected call succeeds
    Naming the faulty parameter lets the agent, and the user, fix the call instead of giving up.

    Given Alice is connected
    When Alice starts an agent that gives the calculator a number instead of an expression and then corrects it
    Then Alice's first calculator call ends with status invalid_parameters naming "expression"
    And Alice's second calculator call succeeds with the result 42

  @T058 @security @conformance_agent
  Scenario: A tool the user may not use is denied with the permission named, and the agent takes another path
    Permissions protect company data; the user learns what is missing and still gets an answer.
    Nor can a user aim a tool at an address of her choosing to carry data out of the service.

    Given Alice holds the "tools:http" permission
    And Alice is connected
    When Alice starts an agent that tries the database and falls back to the dataset analysis
    Then Alice's sql_query call ends with status permission_denied naming "tools:sql"
    And afterwards Alice sees the analyze_data tool succeed
    And Alice receives no database rows
    And Alice's run completes with status completed
    When Alice starts an agent whose HTTP tool she points at a service of her own choosing
    Then Alice's http_api call ends with status error and the code "api_host_not_allowed"
    And Alice's own service was never contacted
    And Alice's run completes with status completed

  @T059 @conformance_agent
  Scenario: Tool calls over the rate limit are refused with a retry time, and the run still completes
    Rate limits protect shared services; an agent that hits them is told when to retry and still finishes.

    Given Alice is connected
    When Alice starts an agent that calls the calculator 15 times as fast as it can
    Then Alice's first 10 calculator calls succeed and later ones end with status rate_limited and a time to retry
    And Alice's run completes with status completed

  @T060 @conformance_agent
  Scenario: A tool slower than usual sends a notice that it is still working
    Without a notice a slow tool looks like a frozen chat; with it the user knows to wait.

    Given Alice is connected
    When Alice starts an agent that waits 2.5 seconds in a tool
    Then Alice receives a slow notice for the wait call between its announcement and its completion
