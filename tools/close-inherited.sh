# Sourced by the tools that start daemons for tests (slurm-local.sh, telemetry-peers.sh).
# A daemon must not keep the caller's descriptors open (Foundation's Process waits on a pipe its
# child inherits): close_inherited closes everything but stdio and the script itself.
close_inherited() {
  local fd
  for fd in $(ls /proc/$$/fd); do
    [ "$fd" -gt 2 ] && [ "$fd" -ne 255 ] && eval "exec $fd>&-" 2>/dev/null || true
  done
}
