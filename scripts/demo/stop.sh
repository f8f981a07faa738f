#!/bin/sh
# Demo stop hook: marks the demo service as stopped.
state="${TMPDIR:-/tmp}/keepserver-demo.running"
rm -f "$state"
echo "demo service stopped: role=$KEEPSERVER_ROLE previous=$KEEPSERVER_PREVIOUS_ROLE"
