#!/usr/bin/env bash
# Start contrib/wiredesk.service under a real systemd (PID 1 of a systemd-nspawn container booted from this machine's
# own /usr), install it the way the unit's header says, and check what systemd reports: Type=notify readiness, the
# watchdog (a frozen process is killed and restarted), the digest served, and a clean stop.
#
#   sudo contrib/systemd-check/run.sh          (needs root, systemd-nspawn from systemd-container, Debian/Ubuntu)
#
# It creates the `wiredesk` system user and /opt/wiredesk on this machine (as the unit's install steps do); the
# container's /etc, /var and the service's data live in a scratch directory that is removed at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(cd "$here/../.." && pwd)"
python="${PYTHON:-/usr/bin/python3}"
command -v systemd-nspawn >/dev/null || { echo "run.sh: systemd-nspawn not found: apt-get install systemd-container" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (it boots a container)" >&2; exit 2; }

# 1. install as the unit's header says
id wiredesk >/dev/null 2>&1 || useradd --system --home /var/lib/wiredesk --create-home wiredesk
[ -x /opt/wiredesk/bin/pip ] || "$python" -m venv /opt/wiredesk
/opt/wiredesk/bin/pip install -q "$project"

# 2. three feeds on loopback (the test farm), shared with the container through the host network
scratch="$(mktemp -d /var/tmp/wiredesk-systemd-check.XXXXXX)"
trap 'kill "$farm" 2>/dev/null || true; rm -rf "$scratch"' EXIT
/opt/wiredesk/bin/python "$project/tests/farm.py" --feeds 3 --entries 5 > "$scratch/farm.url" &
farm=$!
for _ in $(seq 50); do [ -s "$scratch/farm.url" ] && break; sleep 0.2; done
base="$(head -1 "$scratch/farm.url")"

# 3. a root directory for the container: this machine's /usr, a copy of its /etc, the unit and the checker
root="$scratch/root"
mkdir -p "$root"/{usr/lib,etc,var/lib/wiredesk,var/log,var/tmp,opt,dev,proc,sys,run,tmp,root,out,check}
for d in bin lib lib64 sbin; do ln -s "usr/$d" "$root/$d"; done
cp /usr/lib/os-release "$root/usr/lib/os-release"
cp -a /etc/. "$root/etc/"
: > "$root/etc/machine-id"
chown wiredesk:wiredesk "$root/var/lib/wiredesk"
install -m 644 "$project/contrib/wiredesk.service" "$root/etc/systemd/system/wiredesk.service"
mkdir -p "$root/etc/systemd/system/wiredesk.service.d" "$root/etc/wiredesk"
printf '[Service]\n# short, so that the check sees the watchdog act within seconds\nWatchdogSec=4\n' \
    > "$root/etc/systemd/system/wiredesk.service.d/check.conf"
install -m 644 "$here/check.service" "$root/etc/systemd/system/check.service"
cat > "$root/etc/wiredesk/wiredesk.toml" <<TOML
[fetch]
allow_networks = ["127.0.0.0/8"]
[server]
port = 8089
[[feeds]]
url = "$base/feed/0.xml"
[[feeds]]
url = "$base/feed/1.xml"
[[feeds]]
url = "$base/feed/2.xml"
TOML

# 4. boot; check.service runs check.sh and powers the container off
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 timeout 300 systemd-nspawn -D "$root" -b --quiet --register=no --keep-unit \
    --bind-ro=/usr:/usr --bind-ro=/opt:/opt --bind-ro="$here":/check --bind="$root/out":/out \
    systemd.unit=check.service > "$scratch/boot.log" 2>&1 || { tail -20 "$scratch/boot.log"; exit 1; }
cat "$root/out/report.txt"
grep -q "^verdict: ok" "$root/out/report.txt"
