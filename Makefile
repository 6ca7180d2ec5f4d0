# Convenience targets; the README's two commands (scripts/demo, scripts/test) need no make.
.PHONY: setup test check demo services-up services-down

setup:
	scripts/setup

test:
	scripts/test

check: setup
	scripts/check

demo:
	scripts/demo
