#!/usr/bin/env bash
# The docker engine for `make images` and the container tests.
#   scripts/engine.sh start   use the engine that answers; else install Debian's docker.io (and debootstrap,
#                             for the local base image) when missing and start dockerd, noting its pid
#   scripts/engine.sh stop    stop dockerd only if `start` started it
set -euo pipefail
state=${ENGINE_STATE_DIR:-build/engine}
pidfile=$state/dockerd.pid

answers() { docker info >/dev/null 2>&1; }

start() {
  if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "installing Debian docker.io and debootstrap (container images and tests)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      docker.io debootstrap >/dev/null
  fi
  answers && return 0
  mkdir -p "$state"
  echo "starting dockerd (log: $state/dockerd.log)"
  setsid dockerd >"$state/dockerd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 120); do answers && return 0; sleep 0.5; done
  echo "dockerd did not answer within 60 s; see $state/dockerd.log" >&2
  tail -20 "$state/dockerd.log" >&2
  exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  rm -f "$pidfile"
  kill -0 "$pid" 2>/dev/null || return 0
  echo "stopping the dockerd started for this run (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  echo "dockerd $pid still running after 30 s" >&2
}

"${1:?usage: scripts/engine.sh start|stop}"
