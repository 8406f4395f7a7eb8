"""Content-addressed storage: bytes stored once by SHA-256, reference-counted, transactional."""
