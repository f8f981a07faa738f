#!/bin/sh
# Demo is-running hook: exit 0 while the demo service's state file exists.
test -f "${TMPDIR:-/tmp}/keepserver-demo.running"
