"""Quality: Great Expectations suites (kept as JSON in expectations/) run as Dagster asset checks."""
