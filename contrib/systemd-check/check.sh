#!/bin/sh
# Runs inside the container, as a unit started by systemd after wiredesk.service; writes /out/report.txt.
out=/out/report.txt
: > $out
say() { echo "$@" >> $out; }
show() { systemctl show wiredesk -p "$1" --value; }
fail=""
expect() { [ "$(show "$1")" = "$2" ] || fail="$fail $1=$(show "$1")(expected $2)"; }

say "systemd: $(systemctl --version | head -1); PID 1 is $(cat /proc/1/comm)"
sleep 10     # longer than WatchdogSec=4: without WATCHDOG=1 pings the service would have been killed by now
say "-- after 10 s:"
systemctl show wiredesk -p Type -p ActiveState -p SubState -p NRestarts -p WatchdogUSec -p StatusText -p User >> $out
expect ActiveState active; expect NRestarts 0
/opt/wiredesk/bin/python - >> $out 2>&1 <<'PY' || fail="$fail digest"
import urllib.request
with urllib.request.urlopen("http://127.0.0.1:8089/digest.atom", timeout=5) as r:
    body = r.read()
print("GET /digest.atom:", r.status, body.count(b"<entry>"), "stories")
assert r.status == 200 and body.count(b"<entry>") > 0
PY

say "-- watchdog: the main process is frozen (SIGSTOP), so WATCHDOG=1 stops coming"
pid=$(show MainPID)
kill -STOP "$pid"
sleep 16     # the 4 s watchdog, then Restart=on-failure after RestartSec=10
systemctl show wiredesk -p ActiveState -p NRestarts -p MainPID >> $out
journalctl -u wiredesk --no-pager -o cat | grep -E "Watchdog timeout|Failed with result|restart counter" >> $out
expect ActiveState active; expect NRestarts 1
[ "$(show MainPID)" != "$pid" ] || fail="$fail MainPID-unchanged"

say "-- stop"
t0=$(date +%s%N)
systemctl stop wiredesk
t1=$(date +%s%N)
say "systemctl stop took $(( (t1 - t0) / 1000000 )) ms"
systemctl show wiredesk -p ActiveState -p Result >> $out
expect ActiveState inactive; expect Result success
[ $(( (t1 - t0) / 1000000 )) -lt 10000 ] || fail="$fail stop-too-slow"
say "-- journal of the unit"
journalctl -u wiredesk --no-pager -o short-iso >> $out
if [ -z "$fail" ]; then say "verdict: ok"; else say "verdict: FAILED:$fail"; fi
sync
systemctl poweroff
