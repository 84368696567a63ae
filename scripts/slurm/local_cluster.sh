#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, from Debian's packages, for CI and local tests
# of `unmask embed --shard N` under a Slurm job array.
#
#   scripts/slurm/local_cluster.sh start    # install (if needed), configure, start munged/slurmctld/slurmd,
#                                           # wait until the node is idle
#   scripts/slurm/local_cluster.sh status   # daemons, sinfo, squeue
#   scripts/slurm/local_cluster.sh stop     # stop slurmd, slurmctld and munged
#
# Then, for example:
#   sbatch --wait --array=0-3 scripts/slurm/embed_array.sbatch
#
# Needs root (it installs packages, writes /etc/slurm and starts daemons). Works without systemd
# (a container, gVisor): the daemons are started directly, not through init scripts or units.
# cgroups are not used (proctrack/linuxproc, task/none), so no cgroup mounts are needed.
#
# Environment knobs:
#   SLURM_START_TIMEOUT   seconds to wait for the node to become idle (default 90)
#   SLURM_CONF_DIR        where to write slurm.conf (default: /etc/slurm, or /etc/slurm-llnl on old
#                         releases that read that). Slurm's clients read the same default path.
#   SLURM_PARTITION       partition name (default: local)
set -euo pipefail

CLUSTER_NAME=unmask-ci
PARTITION=${SLURM_PARTITION:-local}
START_TIMEOUT=${SLURM_START_TIMEOUT:-90}
NODE=$(hostname -s)

CTLD_STATE=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
LOG_DIR=/var/log/slurm
RUN_DIR=/run/slurm
CTLD_PID=$RUN_DIR/slurmctld.pid
SLURMD_PID=$RUN_DIR/slurmd.pid
CTLD_LOG=$LOG_DIR/slurmctld.log
SLURMD_LOG=$LOG_DIR/slurmd.log
MUNGE_RUN=/run/munge
MUNGE_PID=$MUNGE_RUN/munged.pid
MUNGE_KEY=/etc/munge/munge.key
MUNGE_LOG=/var/log/munge/munged.log

log() { echo "[local_cluster] $*" >&2; }
die() { echo "[local_cluster] ERROR: $*" >&2; exit 1; }

conf_dir() {
    if [[ -n ${SLURM_CONF_DIR:-} ]]; then
        echo "$SLURM_CONF_DIR"
    elif [[ -d /etc/slurm-llnl && ! -d /etc/slurm ]]; then
        echo /etc/slurm-llnl # Debian <= 10, Ubuntu <= 20.04
    else
        echo /etc/slurm
    fi
}

need_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (installs packages, writes $(conf_dir), starts daemons)"
}

# pid_alive PIDFILE COMM: true when PIDFILE names a live process whose name is COMM.
pid_alive() {
    local pidfile=$1 comm=$2 pid
    [[ -r $pidfile ]] || return 1
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n $pid ]] || return 1
    [[ -r /proc/$pid/comm ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]] || return 1
    # A killed daemon stays a zombie until its parent reaps it: not alive.
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

pid_of() { tr -dc '0-9' <"$1"; }

show_logs() {
    local f
    for f in "$MUNGE_LOG" "$CTLD_LOG" "$SLURMD_LOG"; do
        if [[ -r $f ]]; then
            echo "----- tail -n 40 $f -----" >&2
            tail -n 40 "$f" >&2 || true
        else
            echo "----- $f: missing -----" >&2
        fi
    done
}

fail() {
    echo "[local_cluster] ERROR: $*" >&2
    show_logs
    exit 1
}

# ---------------------------------------------------------------- install

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null &&
        command -v sbatch >/dev/null; then
        return 0
    fi
    log "installing slurm-wlm and munge from the distribution's packages"
    export DEBIAN_FRONTEND=noninteractive
    # Without systemd the packages' maintainer scripts would try to start munge/slurmd/slurmctld
    # through their init scripts (and fail the install if that fails): forbid that for the
    # duration of the install with a temporary policy-rc.d, unless the image already has one.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        added_policy=1
    fi
    local rc=0
    # (set -e does not apply inside a subshell whose status is tested: each step is checked.)
    (
        # Refresh the package lists only when they do not know the packages (fresh image) ...
        if ! apt-cache show slurmctld >/dev/null 2>&1 || ! apt-cache show munge >/dev/null 2>&1; then
            apt-get update -q
        fi
        # ... or when they are stale (a 404 on download).
        if ! apt-get install -y -q --no-install-recommends slurm-wlm munge; then
            apt-get update -q
            apt-get install -y -q --no-install-recommends slurm-wlm munge
        fi
    ) || rc=$?
    if [[ $added_policy -eq 1 ]]; then rm -f "$policy"; fi
    [[ $rc -eq 0 ]] || die "apt-get install slurm-wlm munge failed (exit $rc)"
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
        die "slurm-wlm/munge installed but slurmctld/slurmd/munged are not on PATH"
    fi
}

# ---------------------------------------------------------------- munge

setup_munge() {
    getent passwd munge >/dev/null || die "no 'munge' user (the munge package creates it)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
    install -d -o munge -g munge -m 0711 /var/lib/munge
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    if [[ ! -s $MUNGE_KEY ]]; then
        log "creating munge key $MUNGE_KEY"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY"
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

start_munge() {
    if pid_alive "$MUNGE_PID" munged; then
        log "munged already running (pid $(pid_of "$MUNGE_PID"))"
    else
        rm -f "$MUNGE_PID" "$MUNGE_RUN/munge.socket.2" "$MUNGE_RUN/munge.socket.2.lock"
        log "starting munged (as user munge)"
        # munged refuses to share its socket with other users' files; run it as its own user,
        # like the package's init script / systemd unit does.
        if command -v runuser >/dev/null; then
            runuser -u munge -- /usr/sbin/munged || fail "munged failed to start"
        else
            su -s /bin/sh munge -c /usr/sbin/munged || fail "munged failed to start"
        fi
    fi
    for _ in $(seq 1 50); do
        if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    fail "munge credential round trip (munge -n | unmunge) failed"
}

# ---------------------------------------------------------------- slurm config

slurm_user() {
    if getent passwd slurm >/dev/null; then echo slurm; else echo root; fi
}

write_config() {
    local dir cpus mem_mb real_mem user tmp changed=1
    dir=$(conf_dir)
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
    # A bit below the real memory: slurmd drains a node that has less than RealMemory.
    real_mem=$((mem_mb * 90 / 100))
    user=$(slurm_user)

    install -d -m 0755 "$dir"
    install -d -o "$user" -g "$user" -m 0755 "$CTLD_STATE" "$LOG_DIR" "$RUN_DIR"
    install -d -m 0755 "$SLURMD_SPOOL"

    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by scripts/slurm/local_cluster.sh: a one-node Slurm cluster for CI. Edits are overwritten.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=$user
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ReturnToService=2
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$CTLD_STATE
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldLogFile=$CTLD_LOG
SlurmdLogFile=$SLURMD_LOG
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
# No cgroups (they rarely work inside containers).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# No accounting.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Trust this file over what slurmd detects (containers report odd topologies).
SlurmdParameters=config_overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus Sockets=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$real_mem State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
    if [[ -f $dir/slurm.conf ]] && cmp -s "$tmp" "$dir/slurm.conf"; then
        changed=0
        rm -f "$tmp"
    else
        install -m 0644 "$tmp" "$dir/slurm.conf"
        rm -f "$tmp"
        log "wrote $dir/slurm.conf (node $NODE: CPUs=$cpus RealMemory=${real_mem}MB)"
    fi
    CONFIG_CHANGED=$changed
}

# ---------------------------------------------------------------- slurm daemons

ctld_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
    if pid_alive "$CTLD_PID" slurmctld; then
        log "slurmctld already running (pid $(pid_of "$CTLD_PID"))"
    else
        rm -f "$CTLD_PID"
        log "starting slurmctld"
        slurmctld || fail "slurmctld failed to start"
    fi
    local deadline=$((SECONDS + START_TIMEOUT))
    until ctld_up; do
        ((SECONDS < deadline)) || fail "slurmctld did not answer 'scontrol ping' within ${START_TIMEOUT}s"
        pid_alive "$CTLD_PID" slurmctld || { sleep 1; pid_alive "$CTLD_PID" slurmctld; } ||
            fail "slurmctld exited"
        sleep 0.5
    done
}

start_slurmd() {
    if pid_alive "$SLURMD_PID" slurmd; then
        log "slurmd already running (pid $(pid_of "$SLURMD_PID"))"
    else
        rm -f "$SLURMD_PID"
        log "starting slurmd"
        slurmd || fail "slurmd failed to start"
    fi
}

node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }

wait_node_idle() {
    local deadline=$((SECONDS + START_TIMEOUT)) state="" last_resume=-100
    while :; do
        state=$(node_state)
        case $state in
        idle | mixed | allocated | completing)
            log "node $NODE is $state"
            return 0
            ;;
        *drain* | down | fail*)
            # Left over from an earlier run (e.g. "Node unexpectedly rebooted"): resume it.
            if ((SECONDS - last_resume >= 5)); then
                scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
                last_resume=$SECONDS
            fi
            ;;
        esac
        if ((SECONDS >= deadline)); then
            sinfo -N -l >&2 || true
            scontrol show node "$NODE" >&2 || true
            fail "node $NODE not idle after ${START_TIMEOUT}s (state: '${state:-unknown}')"
        fi
        pid_alive "$SLURMD_PID" slurmd || { sleep 1; pid_alive "$SLURMD_PID" slurmd; } || fail "slurmd exited"
        sleep 1
    done
}

stop_pidfile() { # stop_pidfile PIDFILE COMM: SIGTERM, wait, SIGKILL.
    local pidfile=$1 comm=$2 pid
    pid_alive "$pidfile" "$comm" || { rm -f "$pidfile"; return 0; }
    pid=$(pid_of "$pidfile")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        [[ -d /proc/$pid ]] || break
        sleep 0.1
    done
    if [[ -d /proc/$pid ]]; then
        log "$comm (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pidfile"
    log "stopped $comm (pid $pid)"
}

stop_slurm() {
    if pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd; then
        # Asks slurmctld and every slurmd to save state and exit.
        log "scontrol shutdown (slurmctld and slurmd)"
        scontrol shutdown >/dev/null 2>&1 || true
            for _ in $(seq 1 100); do
            pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd || break
            sleep 0.1
        done
    fi
    stop_pidfile "$SLURMD_PID" slurmd
    stop_pidfile "$CTLD_PID" slurmctld
}

# ---------------------------------------------------------------- commands

cmd_start() {
    need_root
    local t0=$SECONDS
    install_packages
    setup_munge
    start_munge
    write_config
    if [[ $CONFIG_CHANGED -eq 1 ]] && { pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd; }; then
        log "configuration changed: restarting slurmctld and slurmd"
        stop_slurm
    fi
    start_slurmctld
    start_slurmd
    wait_node_idle
    log "cluster $CLUSTER_NAME is up ($((SECONDS - t0))s); partition '$PARTITION', node $NODE"
    sinfo
}

cmd_stop() {
    need_root
    stop_slurm
    stop_pidfile "$MUNGE_PID" munged
    log "cluster stopped"
}

cmd_status() {
    local rc=0
    local d pf
    for d in munged:$MUNGE_PID slurmctld:$CTLD_PID slurmd:$SLURMD_PID; do
        pf=${d#*:}
        if pid_alive "$pf" "${d%%:*}"; then
            echo "${d%%:*}: running (pid $(pid_of "$pf"))"
        else
            echo "${d%%:*}: not running"
            rc=1
        fi
    done
    if command -v sinfo >/dev/null && ctld_up; then
        sinfo
        squeue
    else
        echo "slurmctld is not answering"
        rc=1
    fi
    return $rc
}

case ${1:-} in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
restart)
    cmd_stop
    cmd_start
    ;;
*)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
