#!/usr/bin/env bash
# Stop the test cluster of ci/slurm/up.sh: cancel its jobs, then stop exactly the daemons whose
# PIDs up.sh recorded in $EM_LIB_SLURM_DIR/pids (newest first), checking each PID still runs the
# program recorded for it. Other processes, including other SLURM or munge daemons, are left alone.
# EM_LIB_SLURM_PURGE=1 also deletes the state directory (configs, logs, database).
set -uo pipefail

STATE="${EM_LIB_SLURM_DIR:-/tmp/em_lib-slurm}"
PIDS="$STATE/pids"
purge() {
    if [ "${EM_LIB_SLURM_PURGE:-0}" = 1 ] && [ -f "$STATE/slurm.conf" ]; then
        rm -rf -- "$STATE"
    fi
}
if [ ! -s "$PIDS" ]; then
    echo "[slurm-down] nothing recorded in $PIDS"
    purge
    exit 0
fi
export SLURM_CONF="$STATE/slurm.conf"

# jobs of this cluster first, so that no slurmstepd outlives slurmd
if grep -q '^slurmctld ' "$PIDS" && scontrol ping >/dev/null 2>&1; then
    scancel --full --user="$(id -un)" 2>/dev/null
    for _ in $(seq 40); do
        [ -z "$(squeue -h -t PD,R,CG -o %i 2>/dev/null)" ] && break
        sleep 0.25
    done
fi

ours() { # pid name: does pid still run the program we started under that name?
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}
tac "$PIDS" | while read -r name pid; do
    if ! ours "$pid" "$name"; then
        echo "[slurm-down] $name (pid $pid) is not running"
        continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 60); do
        ours "$pid" "$name" || break
        sleep 0.25
    done
    if ours "$pid" "$name"; then
        echo "[slurm-down] $name (pid $pid) ignored SIGTERM for 15 s: SIGKILL"
        kill -KILL "$pid"
    fi
    echo "[slurm-down] stopped $name (pid $pid)"
done
rm -f "$PIDS"
# the /etc/slurm/slurm.conf link of up.sh, if it made one and it still points to our config
if [ -s "$STATE/etc-link" ]; then
    link="$(cat "$STATE/etc-link")"
    [ "$(readlink "$link")" = "$STATE/slurm.conf" ] && rm -f "$link"
    rm -f "$STATE/etc-link"
fi
purge
