"""The Files API: uploads streamed to the content store, session-scoped copies and outputs."""
