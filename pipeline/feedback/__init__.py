"""Feedback (reverse ETL): push the feedback models' values into the source systems, once each."""
