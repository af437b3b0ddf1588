"""What the command-line process owns besides the jobs: the local Prefect API it starts (and that
cannot outlive it), its progress bar on the terminal, and a quiet end when its output pipe closes."""
