.PHONY: run test bench lint

run:  ## set up and run the server
	bash scripts/run.sh

test:  ## set up and run the checks and the test-suite
	bash scripts/test.sh

lint:
	.venv/bin/ruff check app tests bench && .venv/bin/mypy app

bench:
	.venv/bin/python bench/bench_stream.py && .venv/bin/python bench/bench_sandbox.py && .venv/bin/python bench/bench_session.py
