"""The project's own chaos run (``agentevents chaos``): runs under a random fault schedule, then a
history checker over what clients received and what the archive holds."""
