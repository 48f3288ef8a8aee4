"""`python -m lambda_fn refresh ...`: the CLI front door, the same as the `ecr-token-refresher` command."""

from lambda_fn.cli import run

run()
