"""Automation: jobs, schedules and sensors that decide when the asset graph runs."""
