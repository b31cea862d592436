//! End-to-end scenarios across the whole installation (see `tests/`).
