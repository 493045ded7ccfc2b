#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for trying `python main.py --slurm N` and for the
# tests of tests/test_slurm.py. Run as root on Debian, after
#   apt-get install -y slurmctld slurmd slurm-client munge
# It writes /etc/slurm/slurm.conf (one node: this machine, 2 CPUs; proctrack/linuxproc,
# task/none, select/cons_tres, no accounting), starts munged, slurmctld and slurmd, and waits
# until the node is idle. Run it again to restart the daemons with a fresh configuration.
#   bash scripts/slurm_local_cluster.sh           # start (or restart)
#   bash scripts/slurm_local_cluster.sh stop      # stop the daemons it started
set -euo pipefail

CONF=/etc/slurm/slurm.conf
HOST="$(hostname -s)"
CPUS="${SLURM_LOCAL_CPUS:-2}"
MEM_MB="$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)"

stop() {
  for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
  done
  sleep 1
}

if [ "$(id -u)" != 0 ]; then
  echo "$0: run as root (it writes $CONF and starts the SLURM daemons)" >&2
  exit 1
fi
for cmd in munged slurmctld slurmd sinfo; do
  if ! command -v "$cmd" >/dev/null; then
    echo "$0: $cmd is missing: apt-get install -y slurmctld slurmd slurm-client munge" >&2
    exit 1
  fi
done

stop
if [ "${1:-}" = stop ]; then
  exit 0
fi

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$CONF" <<EOF
# Written by scripts/slurm_local_cluster.sh: one node (this machine), no accounting.
ClusterName=clip-local
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SlurmdParameters=config_overrides
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# A cancelled task is killed 5 s after its SIGTERM; ended jobs stay visible for 10 minutes.
KillWait=5
MinJobAge=600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

# munged: as its own user when it is not already answering.
if ! munge -n </dev/null >/dev/null 2>&1; then
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then  # the package makes one; an image may lack it
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chmod 400 /etc/munge/munge.key
  fi
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
  if command -v runuser >/dev/null; then
    runuser -u munge -- /usr/sbin/munged
  else
    /usr/sbin/munged --force
  fi
  for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
fi

slurmctld -c    # -c: a clean start, no jobs kept from an earlier cluster
slurmd

for _ in $(seq 120); do
  state="$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)"
  if [ "$state" = idle ]; then
    echo "SLURM: node $HOST idle ($CPUS CPUs, partition debug); logs in /var/log/slurm/"
    exit 0
  fi
  sleep 0.5
done
echo "$0: node $HOST did not become idle (state: ${state:-none}); see /var/log/slurm/" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
