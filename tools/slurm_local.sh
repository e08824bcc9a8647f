#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for the sweep's Slurm tests (tests/sweep/) and CI.
#
#   tools/slurm_local.sh install   apt-get install slurm-wlm munge (as root, or with sudo)
#   tools/slurm_local.sh start     start munged (unless one runs), slurmctld and slurmd; prints
#                                  the SLURM_CONF line to export
#   tools/slurm_local.sh stop      stop, by pid, the daemons `start` started (and nothing else)
#   tools/slurm_local.sh env       print `export SLURM_CONF=...`
#
# The cluster: one node (this host, its CPUs and memory), one partition, ProctrackType
# proctrack/linuxproc, TaskPlugin task/none, SelectType select/cons_tres (CR_CPU), no accounting
# (squeue, not sacct), on the first free ports from 6817. Its config, state, logs and pid list
# live in $ADEPT_SLURM_DIR (/tmp/adept-slurm); clients find it through SLURM_CONF. Needs root
# (slurmd runs jobs as their submitter).
set -euo pipefail

DIR="${ADEPT_SLURM_DIR:-/tmp/adept-slurm}"
CONF="$DIR/slurm.conf"
PIDS="$DIR/pids"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
log() { echo "slurm_local: $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null &&
    command -v munged >/dev/null; then
    return 0
  fi
  log "installing slurm-wlm and munge"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

# A TCP port nothing listens on, from $1 upwards (so that clusters of several checkouts coexist).
free_port() {
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

write_conf() {
  local node cpus mem ctld_port slurmd_port
  node="$(hostname -s)"
  ctld_port="${ADEPT_SLURMCTLD_PORT:-$(free_port 6817)}"
  slurmd_port="${ADEPT_SLURMD_PORT:-$(free_port $((ctld_port + 1)))}"
  cpus="$(nproc)"
  # RealMemory in MiB, as slurmd -C reports it (a little under MemTotal)
  mem="$(slurmd -C 2>/dev/null | sed -nE 's/.*RealMemory=([0-9]+).*/\1/p')"
  mem="${mem:-1024}"
  mkdir -p "$DIR/state" "$DIR/spool"
  cat >"$CONF" <<EOF
# Written by tools/slurm_local.sh: a single-node cluster for tests.
ClusterName=adept-local
SlurmctldHost=${node}(127.0.0.1)
AuthType=auth/munge
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldPort=${ctld_port}
SlurmdPort=${slurmd_port}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=10
MinJobAge=600
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=local Nodes=${node} Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already runs; using it"
    return 0
  fi
  as_root mkdir -p /run/munge /var/log/munge /var/lib/munge
  as_root chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    as_root mkdir -p /etc/munge
    as_root dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    as_root chown munge:munge /etc/munge/munge.key
    as_root chmod 400 /etc/munge/munge.key
  fi
  as_root runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 50); do
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
      echo "munged $(cat /run/munge/munged.pid)" >>"$PIDS"
      return 0
    fi
    sleep 0.1
  done
  log "munged did not start"
  return 1
}

start() {
  install
  mkdir -p "$DIR"
  if [ -s "$PIDS" ]; then
    log "a cluster started from $DIR may still run; stopping it first"
    stop
  fi
  : >"$PIDS"
  write_conf
  start_munge
  export SLURM_CONF="$CONF"
  as_root slurmctld -f "$CONF"
  for _ in $(seq 100); do [ -s "$DIR/slurmctld.pid" ] && break; sleep 0.1; done
  echo "slurmctld $(cat "$DIR/slurmctld.pid")" >>"$PIDS"
  as_root slurmd -f "$CONF" -N "$(hostname -s)"
  for _ in $(seq 100); do [ -s "$DIR/slurmd.pid" ] && break; sleep 0.1; done
  echo "slurmd $(cat "$DIR/slurmd.pid")" >>"$PIDS"
  for _ in $(seq 300); do
    state="$(sinfo -h -o %T 2>/dev/null | head -1 || true)"
    case "$state" in
      idle | mixed | allocated)
        log "cluster up: node $(hostname -s) ($(nproc) CPUs) $state; pids: $(tr '\n' ' ' <"$PIDS")"
        echo "export SLURM_CONF=$CONF"
        return 0
        ;;
    esac
    sleep 0.2
  done
  log "the node did not come up (sinfo: '${state:-nothing}'); logs in $DIR"
  tail -5 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
  return 1
}

stop() {
  [ -s "$PIDS" ] || return 0
  # slurmd, slurmctld, then munged: the reverse of the start order
  tac "$PIDS" | while read -r name pid; do
    # munged serves every cluster on this machine: leave it to another cluster still running
    if [ "$name" = munged ] && pgrep -x slurmctld >/dev/null 2>&1; then
      log "munged (pid $pid) left running: another slurmctld uses it"
      continue
    fi
    if kill -0 "$pid" 2>/dev/null; then
      as_root kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && as_root kill -KILL "$pid" 2>/dev/null || true
      log "stopped $name (pid $pid)"
    fi
  done
  : >"$PIDS"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *)
    echo "usage: $0 install|start|stop|env" >&2
    exit 2
    ;;
esac
