"""Alembic's entry point for the operational store: migrations run on the connection
``pipeline.state.store`` hands over, never from an alembic.ini of their own."""

from alembic import context

connection = context.config.attributes["connection"]
# SQLite alters a table by copying it; batch mode is how Alembic does that.
context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
