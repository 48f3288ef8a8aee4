"""`python -m lambda_fn refresh ...`: the CLI front door."""

from lambda_fn.cli import main

raise SystemExit(main())
