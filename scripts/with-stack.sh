#!/usr/bin/env bash
# Runs a command with the native stack up. Starts the stack only if it is not already up, and
# then stops it again afterwards, leaving the machine as it was found.
set -uo pipefail
AE=".venv/bin/agentevents"
started=0
if ! "$AE" stack status >/dev/null 2>&1; then
  "$AE" stack up || { echo "stack failed to start; logs in .stack/logs" >&2; tail -n 30 .stack/logs/*.log >&2; exit 1; }
  started=1
fi
"$@"
rc=$?
if [ "$started" -eq 1 ]; then
  "$AE" stack down >/dev/null
fi
exit $rc
