#!/usr/bin/env bash
# Bring up a throw-away single-node SLURM cluster on this machine (Debian/Ubuntu, run as root, no
# init system needed): munge, a private MariaDB, slurmdbd, slurmctld and slurmd, all started
# directly by this script. Every PID it starts goes to $EM_LIB_SLURM_DIR/pids, and
# ci/slurm/down.sh stops exactly those. Nothing is written outside $EM_LIB_SLURM_DIR except the
# Debian packages, /run/munge (when munged is not already running) and a link
# /etc/slurm/slurm.conf -> $EM_LIB_SLURM_DIR/slurm.conf (see below; down.sh removes it).
#
#   ci/slurm/up.sh                  # accounting through slurmdbd (sacct works; the default)
#   EM_LIB_SLURM_ACCOUNTING=none ci/slurm/up.sh   # no slurmdbd: use --slurm-status-command squeue
#   . "${EM_LIB_SLURM_DIR:-/tmp/em_lib-slurm}/env"   # SLURM_CONF for sbatch/squeue/sacct
#
# Variables: EM_LIB_SLURM_DIR (state, logs, configs; default /tmp/em_lib-slurm),
# EM_LIB_SLURM_ACCOUNTING (slurmdbd | none), EM_LIB_SLURM_PARTITION (default "ci"),
# EM_LIB_SLURM_NO_INSTALL=1 (do not call apt-get).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
STATE="${EM_LIB_SLURM_DIR:-/tmp/em_lib-slurm}"
ACCOUNTING="${EM_LIB_SLURM_ACCOUNTING:-slurmdbd}"
PARTITION="${EM_LIB_SLURM_PARTITION:-ci}"
CLUSTER=emlib
DB_PORT="${EM_LIB_SLURM_DB_PORT:-3316}"
T0=$(date +%s)

log() { echo "[slurm-up $(($(date +%s) - T0))s] $*"; }
die() {
    echo "[slurm-up] ERROR: $*" >&2
    for f in "$STATE"/log/*.log; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
    done
    exit 1
}
wait_for() { # seconds, description, command...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq $((limit * 4))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "timed out after ${limit}s waiting for $what"
}
record() { echo "$1 $2" >>"$STATE/pids"; log "started $1 (pid $2)"; }

[ "$(id -u)" = 0 ] || die "run as root"
case "$ACCOUNTING" in slurmdbd | none) ;; *) die "EM_LIB_SLURM_ACCOUNTING must be slurmdbd or none" ;; esac
if [ -s "$STATE/pids" ]; then
    die "$STATE/pids exists: a cluster from an earlier up.sh may still run; run ci/slurm/down.sh"
fi

# --- packages ------------------------------------------------------------------------------
PKGS=(munge slurmctld slurmd slurm-client)
[ "$ACCOUNTING" = slurmdbd ] && PKGS+=(slurmdbd mariadb-server-core mariadb-client-core)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "${EM_LIB_SLURM_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" \
        >"${TMPDIR:-/tmp}/em_lib-slurm-apt.log" 2>&1 ||
        { tail -n 30 "${TMPDIR:-/tmp}/em_lib-slurm-apt.log"; die "apt-get install failed"; }
fi

# --- state directory and configuration -----------------------------------------------------
mkdir -p "$STATE"/{log,ctld,spool}
: >"$STATE/pids"
export SLURM_CONF="$STATE/slurm.conf"
NODE_LINE="$(slurmd -C | head -n 1)"
case "$NODE_LINE" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $NODE_LINE" ;; esac
# leave some memory to the host; RealMemory is what jobs may request in total
REAL_MEM="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE_LINE")"
NODE_LINE="$(sed "s/RealMemory=[0-9]*/RealMemory=$((REAL_MEM * 8 / 10))/" <<<"$NODE_LINE")"
if [ "$ACCOUNTING" = slurmdbd ]; then
    ACCT_LINES="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1"
else
    ACCT_LINES="AccountingStorageType=accounting_storage/none"
fi
sed -e "s|@STATE@|$STATE|g" -e "s|@HOST@|$(hostname -s)|g" -e "s|@CLUSTER@|$CLUSTER|g" \
    -e "s|@PARTITION@|$PARTITION|g" -e "s|@NODE_LINE@|$NODE_LINE NodeAddr=127.0.0.1 State=UNKNOWN|" \
    "$HERE/slurm.conf.in" >"$SLURM_CONF"
printf '%s\n' "$ACCT_LINES" >>"$SLURM_CONF"
# Inside a job, the executor plugin's jobstep runs `srun` with every SLURM_* variable removed,
# SLURM_CONF included, so srun only finds the default /etc/slurm/slurm.conf: point it at ours.
# An existing slurm.conf that is not ours (not a link into $STATE) is never touched.
ETC_CONF=/etc/slurm/slurm.conf
if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    [ "$(readlink "$ETC_CONF")" = "$SLURM_CONF" ] || die "$ETC_CONF exists and is not ours"
else
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" "$ETC_CONF"
    echo "$ETC_CONF" >"$STATE/etc-link"
fi
cat >"$STATE/env" <<EOF
export SLURM_CONF="$SLURM_CONF"
export EM_LIB_SLURM_DIR="$STATE"
export EM_LIB_SLURM_ACCOUNTING="$ACCOUNTING"
export EM_LIB_SLURM_PARTITION="$PARTITION"
EOF

# --- munge ----------------------------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running: reusing it (not recorded, down.sh leaves it alone)"
else
    [ -s /etc/munge/munge.key ] || mungekey --create
    install -d -o munge -g munge -m 0755 /run/munge
    setsid setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
        >>"$STATE/log/munged.log" 2>&1 </dev/null &
    record munged $!
    wait_for 15 munge bash -c 'munge -n | unmunge'
fi

# --- accounting: private MariaDB + slurmdbd ------------------------------------------------
if [ "$ACCOUNTING" = slurmdbd ]; then
    DB="$STATE/mariadb"
    SOCK="$STATE/mariadb.sock"
    if [ ! -d "$DB/mysql" ]; then
        mariadb-install-db --no-defaults --datadir="$DB" --user=root --skip-test-db \
            >"$STATE/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed"
    fi
    setsid mariadbd --no-defaults --datadir="$DB" --socket="$SOCK" --port="$DB_PORT" \
        --bind-address=127.0.0.1 --user=root --pid-file="$STATE/mariadbd.pid" \
        --log-error="$STATE/log/mariadbd.log" --innodb-buffer-pool-size=1G \
        --innodb-lock-wait-timeout=900 --skip-log-bin >/dev/null 2>&1 </dev/null &
    record mariadbd $!
    wait_for 60 mariadbd mariadb --no-defaults -S "$SOCK" -u root -e "SELECT 1"
    mariadb --no-defaults -S "$SOCK" -u root -e "
        CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'em_lib-ci';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || die "creating the DB user failed"
    sed -e "s|@STATE@|$STATE|g" -e "s|@DB_PORT@|$DB_PORT|g" "$HERE/slurmdbd.conf.in" \
        >"$STATE/slurmdbd.conf"
    chmod 0600 "$STATE/slurmdbd.conf" # slurmdbd refuses a readable file; SlurmUser is root
    setsid slurmdbd -D >>"$STATE/log/slurmdbd.stdout" 2>&1 </dev/null &
    record slurmdbd $!
    wait_for 60 slurmdbd sacctmgr -n list cluster
fi

# --- slurmctld and slurmd ------------------------------------------------------------------
setsid slurmctld -D -i -f "$SLURM_CONF" >>"$STATE/log/slurmctld.stdout" 2>&1 </dev/null &
record slurmctld $!
wait_for 30 slurmctld scontrol ping
setsid slurmd -D -f "$SLURM_CONF" >>"$STATE/log/slurmd.stdout" 2>&1 </dev/null &
record slurmd $!
wait_for 30 "an idle node" bash -c "sinfo -h -o %t -p '$PARTITION' | grep -qx idle"

if [ "$ACCOUNTING" = slurmdbd ]; then
    # slurmctld registers the cluster (and the root account) itself; wait until it has
    wait_for 60 "cluster registration" bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER"
    wait_for 30 "root association" bash -c "sacctmgr -n -P list assoc user=root format=account | grep -qx root"
fi

# --- smoke test: a job runs and (with accounting) shows up in sacct ------------------------
JOB="$(sbatch --parsable -p "$PARTITION" -t 1 --mem=50 -o /dev/null --wrap true)" || die "sbatch failed"
wait_for 60 "smoke-test job $JOB" bash -c "! squeue -h -j $JOB 2>/dev/null | grep -q ."
if [ "$ACCOUNTING" = slurmdbd ]; then
    wait_for 60 "job $JOB in sacct" bash -c "sacct -n -X -P -j $JOB -o State | grep -qx COMPLETED"
fi
log "cluster '$CLUSTER' up (partition $PARTITION, accounting $ACCOUNTING); . $STATE/env"
