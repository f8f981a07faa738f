#!/bin/sh
# Demo start hook: marks the demo service as running.
state="${TMPDIR:-/tmp}/keepserver-demo.running"
echo "demo service starting: role=$KEEPSERVER_ROLE previous=$KEEPSERVER_PREVIOUS_ROLE vip=$KEEPSERVER_VIP nic=$KEEPSERVER_NIC"
date > "$state"
echo "demo service started (state file $state)"
