"""One scheduled run through the Lambda handler, in this process, as Lambda calls it: `make bench` runs it
as a child process and counts what it writes (Powertools' JSON log lines and EMF metrics), which is what
a run sends to CloudWatch Logs, less Lambda's own START/END/REPORT lines.

Usage: python -m bench.lambda_run (the function's environment variables set)."""

from __future__ import annotations

import json
from pathlib import Path

from lambda_fn.handler import lambda_handler
from sandbox.lambda_context import FakeLambdaContext

SCHEDULED = Path(__file__).parents[1] / "events" / "scheduled.json"

if __name__ == "__main__":
    lambda_handler(json.loads(SCHEDULED.read_text()), FakeLambdaContext(timeout_seconds=300.0))
