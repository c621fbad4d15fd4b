"""The operational store: the write-back ledger, the alert outbox and the quality gate's state."""

from pipeline.state.store import StateStore, StateStoreUnavailable, open_state_store

__all__ = ["StateStore", "StateStoreUnavailable", "open_state_store"]
