"""Level-triggered reconcilers for Runs: resolution, submission, tracking, completion and TTL cleanup."""
