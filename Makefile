# Convenience targets; the README's two commands (scripts/demo, scripts/test) need no make.
.PHONY: setup test check demo services-up services-down bench bench-ingest

setup:
	scripts/setup

test:
	scripts/test

check: setup
	scripts/check

demo:
	scripts/demo

# Every benchmark in scripts/bench/, one after the other (see scripts/bench/README.md); stops at the
# first that fails. BENCH_ARGS go to each, e.g. make bench BENCH_ARGS="--duration-s 0.2 --strict".
bench: setup
	@set -e; for script in scripts/bench/*.py; do \
		echo "== $$script"; .venv/bin/python "$$script" $(BENCH_ARGS); \
	done

# The ingest benchmark alone (issue 5): e.g. make bench-ingest BENCH_ARGS="--quick".
bench-ingest: setup
	.venv/bin/python scripts/bench/ingest.py $(BENCH_ARGS)
