"""Operating mas: readiness probes, metrics, structured logs and traces."""
