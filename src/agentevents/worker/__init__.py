"""Workers run agents: the execution engine, the event bridge, and the worker process."""
