#!/usr/bin/env bash
# Manual check, not part of scripts/test.sh: runs scripts/deps.sh on a clean, container-like Debian
# root. Needs root, debootstrap and slirp4netns (apt-get install debootstrap slirp4netns) and
# Debian's mirrors and PyPI, which deps.sh installs from.
#
#   scripts/fresh-root.sh create   debootstrap a minimal bookworm root (--variant=minbase)
#   scripts/fresh-root.sh start    start its namespaces: own mounts, hostname, IPC, PIDs and network
#                                  (its own loopback, so the host's Postgres, Redis and RabbitMQ are
#                                  invisible; outside traffic goes through slirp4netns)
#   scripts/fresh-root.sh run      copy scripts/ to /work/ferry/scripts in the root and run deps.sh
#                                  there as root; what it starts keeps running for the next run
#   scripts/fresh-root.sh shell    a shell in the root's namespaces
#   scripts/fresh-root.sh stop     stop everything that runs in the root (its PID namespace ends)
#   scripts/fresh-root.sh destroy  stop, then delete the root
#   scripts/fresh-root.sh all      destroy, create, start, run twice (the second run must reuse
#                                  what the first started), stop
# The root is FERRY_FRESH_ROOT (default /var/tmp/ferry-root, not /tmp: it grows to about 2 GB).
set -euo pipefail
source "$(dirname "$0")/lib/common.sh"

R=${FERRY_FRESH_ROOT:-/var/tmp/ferry-root}
STATE=$R.ns # pids of the namespace's init and of slirp4netns, kept outside the root
SUITE=bookworm MIRROR=http://deb.debian.org/debian

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, namespaces and chroot need it)"

tap_up() { nsenter -t "$1" -n ip -4 addr show tap0 up 2>/dev/null | grep -q 'inet '; }
init_pid() { [ -f "$STATE" ] && read -r pid _ <"$STATE" && [ -d "/proc/$pid" ] && echo "$pid"; }

create() {
  [ ! -e "$R" ] || die "$R exists: '$0 destroy' first, or run on it"
  command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
  say "debootstrap $SUITE into $R"
  debootstrap --variant=minbase "$SUITE" "$R" "$MIRROR" >"$R.debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $R.debootstrap.log"
  # What a container runtime provides: its hostname resolves, and a resolver (slirp4netns's).
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tferry-root\n' >"$R/etc/hosts"
  echo ferry-root >"$R/etc/hostname"
  echo 'nameserver 10.0.2.3' >"$R/etc/resolv.conf"
  # Where outside TLS is intercepted, the host trusts a local CA: so does the root (the
  # ca-certificates package adds them to its bundle when a package deps.sh installs pulls it in).
  mkdir -p "$R/usr/local/share/ca-certificates"
  cp -a /usr/local/share/ca-certificates/. "$R/usr/local/share/ca-certificates/" 2>/dev/null || true
  # Without an init system, invoke-rc.d keeps packages from starting their services. With
  # FERRY_FRESH_ROOT_START_SERVICES=1 it lets them, as systemd would: deps.sh then finds Postgres,
  # Redis and RabbitMQ already started by the package manager, with their own configuration.
  if [ "${FERRY_FRESH_ROOT_START_SERVICES:-0}" = 1 ]; then
    printf '#!/bin/sh\nexit 0\n' >"$R/usr/sbin/policy-rc.d" && chmod +x "$R/usr/sbin/policy-rc.d"
  fi
}

start() {
  [ -d "$R/usr" ] || die "no root at $R: '$0 create' first"
  [ -z "$(init_pid)" ] || { say "namespaces already running (init pid $(init_pid))"; return; }
  command -v slirp4netns >/dev/null || die "slirp4netns missing: apt-get install slirp4netns"
  # PID 1 of the namespace: mounts what a container has, then reaps orphans until killed.
  unshare --mount --uts --ipc --pid --net --fork --propagation private --mount-proc="$R/proc" \
    bash -c '
      R=$1
      mount -t sysfs sysfs "$R/sys"
      mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
      mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
      mount --bind "$R/dev/pts/ptmx" "$R/dev/ptmx"
      hostname ferry-root
      ip link set lo up
      exec chroot "$R" /bin/bash -c "trap exit TERM; while :; do sleep 1 & wait; done"
    ' _ "$R" </dev/null >"$R.init.log" 2>&1 &
  local unshare_pid=$! pid='' slirp
  for _ in $(seq 50); do
    pid=$(awk '{print $1}' "/proc/$unshare_pid/task/$unshare_pid/children" 2>/dev/null)
    [ -n "$pid" ] && [ "$(readlink "/proc/$pid/root")" = "$R" ] && break
    pid=; sleep 0.1
  done
  [ -n "$pid" ] || die "the namespace did not start, see $R.init.log"
  # Outside traffic only; --disable-host-loopback keeps the host's 127.0.0.1 out of reach.
  slirp4netns --configure --mtu=65520 --disable-host-loopback "$pid" tap0 >"$R.slirp.log" 2>&1 &
  slirp=$!
  echo "$pid $slirp" >"$STATE"
  wait_for "the root's network (tap0, see $R.slirp.log)" 10 tap_up "$pid"
  say "namespaces running: init pid $pid, slirp4netns pid $slirp"
}

in_root() {
  local pid; pid=$(init_pid) || die "namespaces not running: '$0 start' first"
  nsenter -t "$pid" -m -u -i -n -p -r -w env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

run() {
  rm -rf "$R/work/ferry/scripts" && mkdir -p "$R/work/ferry" && cp -a "$(dirname "$0")" "$R/work/ferry/scripts"
  say "running deps.sh in $R"
  in_root /work/ferry/scripts/deps.sh
}

stop() {
  local pid slirp
  if [ -f "$STATE" ]; then
    read -r pid slirp <"$STATE"
    # Killing the namespace's PID 1 kills every process in it; its mounts go with its mount namespace.
    [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    [ -n "$slirp" ] && kill "$slirp" 2>/dev/null || true
    rm -f "$STATE"
    say "namespaces stopped"
  fi
  ! grep -q " ${R}[/ ]" /proc/mounts || die "still mounted under $R: $(grep " ${R}[/ ]" /proc/mounts | cut -d' ' -f2 | tr '\n' ' ')"
}

destroy() { stop; say "deleting $R"; rm -rf "$R" "$R".*; }

case ${1:-} in
  create) create ;;
  start) start ;;
  run) run ;;
  shell) in_root bash ;;
  stop) stop ;;
  destroy) destroy ;;
  all) destroy; create; start; run; say "second run (reuses what runs)"; run; stop ;;
  *) die "usage: $0 create|start|run|shell|stop|destroy|all" ;;
esac
