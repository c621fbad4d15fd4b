"""``handoff bench``: Handoff measured against a simulated company at a chosen scale, the same way
every time (see ``measurements.py`` for what is measured and how)."""
