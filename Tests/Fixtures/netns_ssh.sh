#!/bin/sh
# A stand-in for ssh in rlaif's multi-host test (no sshd runs on a test machine):
#   netns_ssh.sh HOST COMMAND...
# runs COMMAND in the network namespace named HOST, as `ssh HOST COMMAND...` would on that host.
host="$1"
shift
exec ip netns exec "$host" "$@"
