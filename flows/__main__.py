"""`python -m flows COMMAND ...`: the command line (flows/cli.py)."""
import os
import sys

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# A busy machine starts the temporary local server slowly; Prefect gives up after 20 s by default.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from flows.cli import main  # noqa: E402 - Prefect reads its settings when first imported

if __name__ == "__main__":
    sys.exit(main())
