"""The web console at `/console`: static pages that use the public API with the user's key."""
