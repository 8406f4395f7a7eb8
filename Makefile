.PHONY: run test bench bench-http bench-log bench-concurrency bench-queue bench-replay bench-profile lint

run:  ## set up and run the server
	bash scripts/run.sh

test:  ## set up and run the checks and the test-suite
	bash scripts/test.sh

lint:
	.venv/bin/ruff check app tests bench && .venv/bin/mypy app && .venv/bin/mypy bench

bench:  ## every benchmark (bench/README.md says how long each takes and what it prints)
	bash scripts/bench.sh all

bench-http:  ## reads: mas vs a bare FastAPI app serving the same bytes (wrk), SQLite and PostgreSQL
	bash scripts/bench.sh http

bench-log:  ## log size 1k/10k/50k: one more turn, first page, full read, replay
	bash scripts/bench.sh log

bench-concurrency:  ## 100 concurrent one-tool sessions, worker concurrency 8 vs 32, API + workers
	bash scripts/bench.sh concurrency

bench-queue:  ## work queue vs cloud path (poll -> ack -> first tool result), webhook latency p50/p99
	bash scripts/bench.sh queue

bench-replay:  ## a turn replayed from a cassette vs the same turn with the offline model
	bash scripts/bench.sh replay

bench-profile:  ## py-spy profiles of the hot paths into .build/profiles
	bash scripts/bench.sh profile
