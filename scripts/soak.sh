#!/usr/bin/env bash
# make soak (root; not part of make test): figure4 under load for
# SOAK_SECONDS (default 600) with short SA lifetimes, a takeover and a
# giveback in the middle. Writes target/bench/soak.json; exits non-zero
# when the run does not pass.
#
# - Topology: figure4 derived into target/soak/figure4-soak.toml:
#   * every IpDataOffer gets RefreshLifesizeProposed (KB) worth
#     SOAK_REKEY_SECONDS of one client's iperf3 rate, so the routing
#     stack's IKE rekeys each client's child SA by bytes (from the targets'
#     lifesize reports, Fig. 9 blocks 154-158) about that often, and
#     RefreshLifetimeProposed 1 (minutes: z/OS's smallest), so it rekeys by
#     time too;
#   * MVS5 (DVA1's VIPABACKUP) distributes the iperf3 ports 5201-5204 as
#     MVS1 does (figure4 gives it only 60 and 80), so connections opened
#     while it holds DVA1 are distributed.
# - client1's strongSwan child rekeys by time every SOAK_REKEY_SECONDS
#   (swanctl.conf `rekey_time`; z/OS's policy has no unit below a minute,
#   so the sub-minute time rekey comes from the initiator, as RFC 7296
#   §2.8 lets either end rekey).
# - strongSwan (client1, port 5201) and the plexnet client (client2, port
#   5202) each run iperf3 to DVA1 at SOAK_RATE_MBIT in back-to-back runs of
#   SOAK_SEGMENT seconds until the end; a run that exits non-zero is a
#   failed transfer, and the loop reconnects; so is a run that received
#   less than half of what its rate and duration ask for (iperf3 exits 0
#   when its data stream stalls).
# - At 40 % of the time MVS1 is killed (takeover by MVS5); at 70 % it is
#   restarted (giveback, MOVEABLE IMMEDIATE) when `plexnet restart` exists.
# - Every 10 s: the RSS of every image's daemon, the CF, the plexnet
#   client and client1's charon, and the IKE and replay counters.
set -euo pipefail
BIN=${1:-target/release/plexnet}
T=${SOAK_SECONDS:-600}
RATE=${SOAK_RATE_MBIT:-40}
REKEY=${SOAK_REKEY_SECONDS:-30}
SEG=${SOAK_SEGMENT:-60}
SAMPLE=10
# Namespace prefix: two soaks (two worktrees) can run side by side.
PREFIX=${SOAK_PREFIX:-plxsoak-}
WORK=target/soak
OUT=target/bench/soak.json
[ "$(id -u)" -eq 0 ] || { echo "soak needs root (namespaces): sudo make soak" >&2; exit 1; }
[ -x "$BIN" ] || { echo "soak: no $BIN (make build)" >&2; exit 1; }
mkdir -p "$WORK" target/bench
rm -f "$WORK"/*.json "$WORK"/*.jsonl "$WORK"/*.log "$WORK"/*.out
pj() { "$BIN" --prefix "$PREFIX" "$@"; }
lab_down() { pj down --all >/dev/null 2>&1 || true; }
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  lab_down
}
trap cleanup EXIT
lab_down
log() { echo "soak: $(date -u +%T) $*" >&2; }

# ---- the soak variant of figure4 ----
KB=$(( RATE * 1000000 / 8 * REKEY / 1024 ))
TOPO="$WORK/figure4-soak.toml"
python3 - topologies/figure4.toml "$TOPO" "$KB" <<'PY'
import sys
src, dst, kb = sys.argv[1], sys.argv[2], sys.argv[3]
t = open(src).read()
offer = "  HowToAuth                ESP "
n = t.count(offer)
assert n >= 5, "figure4.toml's IpDataOffers"
t = t.replace(offer, f"  RefreshLifesizeProposed  {kb}\n{offer}")
life = "  RefreshLifetimeProposed  60\n"
assert t.count(life) >= 5, "figure4.toml's IpDataOffer lifetimes"
t = t.replace(life, "  RefreshLifetimeProposed  1\n")
mvs5 = "       PORT 60 80\n       DESTIP MVS2 MVS3 MVS4\n"
assert t.count(mvs5) == 1, "MVS5's VIPADISTRIBUTE of DVA1"
t = t.replace(mvs5, mvs5 + "  VIPADISTRIBUTE DEFINE DISTMETHOD ROUNDROBIN TIMEDAFFINITY 30 198.18.0.100\n"
              "       PORT 5201-5204\n       DESTIP MVS2 MVS3 MVS4\n")
open(dst, "w").write(t)
PY
pj check "$TOPO" >/dev/null
log "topology $TOPO: RefreshLifesizeProposed $KB KB, RefreshLifetimeProposed 1 min, ${T}s at ${RATE} Mbit/s per client"

HAS_KILL=no; HAS_RESTART=no
"$BIN" help kill >/dev/null 2>&1 && HAS_KILL=yes
"$BIN" help restart >/dev/null 2>&1 && HAS_RESTART=yes

pj up "$TOPO" >/dev/null
RUN=$(pj status --json | python3 -c "
import json,sys
for i in json.load(sys.stdin):
  if i['prefix']=='$PREFIX': print(i['run_dir'])")
# client1's child rekeys by time every $REKEY s (the IKE SA's stays off).
CONF=/etc/netns/${PREFIX}client1/swanctl/swanctl.conf
python3 - "$CONF" "$REKEY" <<'PY'
import sys
path, secs = sys.argv[1], sys.argv[2]
t = open(path).read()
head, sep, children = t.partition("    children {")
assert sep and "rekey_time = 0" in children, "swanctl.conf's child"
open(path, "w").write(head + sep + children.replace("rekey_time = 0", f"rekey_time = {secs}s", 1))
PY
pj exec client1 -- swanctl --load-all --noprompt >/dev/null 2>&1

# ---- ready: every XCF link up, the servers registered ----
for img in MVS2 MVS3 MVS4; do
  for p in 5201 5202; do pj exec "$img" -- iperf3 -s -D -B 198.18.0.100 -p $p; done
done
ready() {
  pj netstat MVS1 vdpt --json | python3 -c "
import json,sys; d=json.load(sys.stdin)
print(sum(1 for r in d.get('vdpt',[]) if r['port'] in (5201,5202) and r['ready']))"
}
for i in $(seq 1 120); do [ "$(ready)" -ge 4 ] && break; sleep 1; done
[ "$(ready)" -ge 4 ] || { log "MVS2 and MVS4 not ready on 5201/5202 after 120 s"; exit 1; }
for i in $(seq 1 10); do
  pj exec client1 -- swanctl --initiate --child dva1 >"$WORK/initiate.log" 2>&1 && break
  log "strongSwan's initiate failed (try $i), again"; sleep 5
done
grep -q "initiate completed successfully" "$WORK/initiate.log" || { log "client1 could not set up its SA"; exit 1; }

# ---- the clients: iperf3 runs back to back until the end ----
START=$(date +%s)
END=$(( START + T ))
client_loop() {
  local client=$1 port=$2 runs=0 failed=0
  while :; do
    local left=$(( END - $(date +%s) ))
    [ "$left" -ge 5 ] || break
    local t=$(( left < SEG ? left : SEG ))
    runs=$(( runs + 1 ))
    local out="$WORK/$client-run$runs.json"
    if timeout $(( t + 60 )) "$BIN" --prefix "$PREFIX" exec "$client" -- \
        iperf3 -c 198.18.0.100 -p "$port" -t "$t" -b "${RATE}M" -J >"$out" 2>"$WORK/$client-run$runs.err"; then
      echo "{\"client\":\"$client\",\"run\":$runs,\"ok\":true,\"at\":$(date +%s)}" >>"$WORK/runs.jsonl"
    else
      failed=$(( failed + 1 ))
      echo "{\"client\":\"$client\",\"run\":$runs,\"ok\":false,\"at\":$(date +%s)}" >>"$WORK/runs.jsonl"
      log "$client: iperf3 run $runs failed ($(tail -c 300 "$out" "$WORK/$client-run$runs.err" | tr '\n' ' '))"
      sleep 2
    fi
  done
}
client_loop client1 5201 & PIDS+=($!)
client_loop client2 5202 & PIDS+=($!)

# ---- the sampler ----
sample() {
  local now=$(( $(date +%s) - START ))
  # status exits 3 when a node's process is dead (MVS1 after the kill),
  # with the JSON of all of them all the same.
  pj status --json >"$WORK/status.json" 2>/dev/null || true
  [ -s "$WORK/status.json" ] || return 0
  python3 - "$WORK/status.json" "$PREFIX" "$now" "$RUN" >>"$WORK/samples.jsonl" <<'PY'
import json, sys
status, prefix, now, run = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
s = {"t": now, "rss_kb": {}, "pid": {}, "ike": {}, "owned": {}}
for inst in json.load(open(status)):
    if inst["prefix"] != prefix:
        continue
    for n in inst["nodes"]:
        name, pid, d = n["name"], n.get("pid"), n.get("daemon") or {}
        if n["kind"] in ("image", "cf") or name == "client2":
            if pid and n.get("process_alive"):
                s["rss_kb"][name], s["pid"][name] = rss_kb(pid), pid
        if n["kind"] == "image":
            s["owned"][name] = d.get("owned_dvipas", [])
            if isinstance(d.get("ike"), dict):
                s["ike"][name] = d["ike"].get("counters", {})
        if name == "client2":
            s["client2_replay_drops"] = d.get("replay_drops")
            s["client2_ike"] = d.get("ike")
try:
    pid = int(open(f"{run}/client1.strongswan/charon.pid").read().strip())
    s["rss_kb"]["client1-charon"], s["pid"]["client1-charon"] = rss_kb(pid), pid
except (OSError, ValueError):
    pass
print(json.dumps(s))
PY
}
# The first image that lists DVA1 as owned. During a giveback the owner
# and the MOVING holder both do, until the holder hears Taken: one name is
# printed, never a second into a closed pipe (pipefail would end the soak).
holder() {
  pj status --json | python3 -c "
import json,sys
names=[n['name'] for i in json.load(sys.stdin) if i['prefix']=='$PREFIX' for n in i['nodes']
       if n['kind']=='image' and '198.18.0.100' in ((n.get('daemon') or {}).get('owned_dvipas') or [])]
print(names[0] if names else '')"
}

# ---- faults on schedule, samples every $SAMPLE s ----
KILL_AT=$(( START + T * 4 / 10 ))
RESTART_AT=$(( START + T * 7 / 10 ))
killed=no; restarted=no; FAULTS="[]"
kill_mvs1() {
  if [ "$HAS_KILL" = yes ]; then
    pj kill MVS1 >"$WORK/kill.out" 2>&1
  else
    # Until `plexnet kill` exists: SIGKILL to MVS1's daemon, as
    # tests/takeover_lab.rs does.
    local pid; pid=$(python3 -c "
import json,sys
for i in json.load(open('$WORK/status.json')):
  if i['prefix']=='$PREFIX':
    for n in i['nodes']:
      if n['name']=='MVS1': print(n['pid'])")
    kill -9 "$pid"
  fi
}
wait_holder() {  # NAME TIMEOUT: seconds until NAME holds DVA1, or -1
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 1 $(( $2 * 2 ))); do
    if [ "$(holder)" = "$1" ]; then python3 -c "print(round($(date +%s.%N) - $t0, 1))"; return; fi
    sleep 0.5
  done
  echo -1
}
next=$START
while [ "$(date +%s)" -lt "$END" ]; do
  now=$(date +%s)
  if [ "$now" -ge "$next" ]; then sample; next=$(( next + SAMPLE )); fi
  if [ $killed = no ] && [ "$now" -ge "$KILL_AT" ]; then
    killed=yes
    log "takeover: killing MVS1 ($( [ $HAS_KILL = yes ] && echo 'plexnet kill' || echo 'SIGKILL' ))"
    kill_mvs1
    took=$(wait_holder MVS5 30)
    log "takeover: MVS5 holds DVA1 after ${took}s"
    FAULTS=$(python3 -c "import json; f=json.loads('$FAULTS'); f.append({'fault':'takeover','at_s':$now-$START,'how':'$( [ $HAS_KILL = yes ] && echo 'plexnet kill MVS1' || echo 'SIGKILL to MVS1 daemon' )','new_holder':'MVS5','seconds_to_new_holder':$took}); print(json.dumps(f))")
  fi
  if [ $restarted = no ] && [ $killed = yes ] && [ "$now" -ge "$RESTART_AT" ]; then
    restarted=yes
    if [ "$HAS_RESTART" = yes ]; then
      log "giveback: restarting MVS1"
      pj restart MVS1 >"$WORK/restart.out" 2>&1 || log "plexnet restart MVS1 failed: $(cat "$WORK/restart.out")"
      took=$(wait_holder MVS1 60)
      now_holder=$(holder)
      log "giveback: MVS1 restarted; DVA1 held by ${now_holder:-nobody} (MVS1 after ${took}s; -1: not within 60 s)"
      FAULTS=$(python3 -c "import json; f=json.loads('$FAULTS'); f.append({'fault':'giveback','at_s':$now-$START,'how':'plexnet restart MVS1','holder_after':'${now_holder:-none}','seconds_to_mvs1':$took}); print(json.dumps(f))")
    else
      log "giveback: skipped, this plexnet has no 'restart' command"
      FAULTS=$(python3 -c "import json; f=json.loads('$FAULTS'); f.append({'fault':'giveback','skipped':'plexnet has no restart command'}); print(json.dumps(f))")
    fi
  fi
  sleep 1
done
sample
log "waiting for the last iperf3 runs"
for p in "${PIDS[@]}"; do wait "$p" || true; done
PIDS=()
sample
cp "$RUN/client1.strongswan/charon.log" "$WORK/charon.log" 2>/dev/null || true
# The daemons' logs, for what the counters do not say (who rekeyed why).
for f in mvs1 mvs5 client2 cf; do cp "$RUN/$f.log" "$WORK/$f.log" 2>/dev/null || true; done

# ---- the summary ----
python3 - "$WORK" "$OUT" "$T" "$RATE" "$REKEY" "$KB" "$FAULTS" <<'PY'
import json, sys, glob, re, statistics
work, out, T, rate, rekey, kb, faults = sys.argv[1:]
samples = [json.loads(l) for l in open(f"{work}/samples.jsonl")]
runs = [json.loads(l) for l in open(f"{work}/runs.jsonl")] if glob.glob(f"{work}/runs.jsonl") else []
transfers = {}
for c in ("client1", "client2"):
    mine = [r for r in runs if r["client"] == c]
    sent, stalled = 0, []
    for f in sorted(glob.glob(f"{work}/{c}-run*.json")):
        try:
            d = json.load(open(f))
        except ValueError:
            continue
        got = d.get("end", {}).get("sum_received", {}).get("bytes", 0)
        sent += got
        # iperf3 exits 0 even when its data stream moved nothing: a run
        # that received less than half of what its rate and duration ask
        # for is a failed transfer too.
        secs = d.get("start", {}).get("test_start", {}).get("duration", 0)
        if got < 0.5 * float(rate) * 1e6 / 8 * secs:
            stalled.append({"run": f.rsplit("-run", 1)[1][:-5], "seconds": secs,
                            "mbytes_received": round(got / 1e6, 1)})
    exited = sum(1 for r in mine if not r["ok"])
    transfers[c] = {"runs": len(mine), "failed": exited + len(stalled), "exited_non_zero": exited,
                    "stalled": stalled, "mbytes_received": round(sent / 1e6, 1)}
# IKE rekeys at the routing stacks: counters summed over each daemon's
# lives (a restarted daemon starts again from 0).
def accumulated(key):
    per, last = {}, {}
    for s in samples:
        for img, c in s["ike"].items():
            v, pid = c.get(key, 0), s["pid"].get(img)
            prev = last.get(img)
            new_life = prev is None or prev[1] != pid or v < prev[0]
            per[img] = per.get(img, 0) + (v if new_life else v - prev[0])
            last[img] = (v, pid)
    return {"total": sum(per.values()), "by_image": per}
charon = open(f"{work}/charon.log", errors="replace").read() if glob.glob(f"{work}/charon.log") else ""
# charon's log (filelog default 1, ike 4, chd 4): the CHILD_SA rekeys
# client1 started (REKEY_SA requests it generated) and finished
# (REKEYING => REKEYED, whoever started them), and libipsec's replay and
# ICV drops.
ss_rekeys = len(re.findall(r"generating CREATE_CHILD_SA request \d+ \[ N\(REKEY_SA\)", charon))
ss_rekeyed = len(re.findall(r"CHILD_SA \S+ state change: REKEYING => REKEYED", charon))
ss_replay = len(re.findall(r"ESP sequence number verification failed", charon))
ss_icv = len(re.findall(r"ESP decryption or ICV verification failed", charon))
c2 = [s.get("client2_replay_drops") for s in samples if s.get("client2_replay_drops") is not None]
# The routing stacks' logs name each rekeyed pair with the role the
# stack had in the CREATE_CHILD_SA (initiator: its IKE rekeyed, by the
# bytes the targets reported or by time; responder: the client did) and
# the client's address.
by_role = {}
for f in ("mvs1", "mvs5"):
    for path in glob.glob(f"{work}/{f}.log"):
        for m in re.finditer(r"rekeyed: child#\d+ of ike#\d+ \((initiator|responder)\).* === (\S+)",
                             open(path, errors="replace").read()):
            key = f"{f.upper()} {m.group(1)} with {m.group(2)}"
            by_role[key] = by_role.get(key, 0) + 1
rekeys = {
    "routing_stack_rekeys_by_role_in_logs": by_role,
    "routing_stack_child_sas_rekeyed": accumulated("child_sas_rekeyed"),
    "routing_stack_rekeys_late": accumulated("rekeys_late"),
    "routing_stack_lifesize_reports": accumulated("lifesize_reports"),
    "strongswan_initiated_child_rekeys": ss_rekeys,
    "strongswan_child_sas_rekeyed": ss_rekeyed,
    "client2_ike_at_end": samples[-1].get("client2_ike") if samples else None,
}
# Memory: per process, over its latest life (a restarted MVS1 starts anew).
rss = {}
for name in sorted({n for s in samples for n in s["rss_kb"]}):
    pts = [(s["t"], s["rss_kb"][name], s["pid"].get(name)) for s in samples if s["rss_kb"].get(name)]
    if not pts:
        continue
    life = [p for p in pts if p[2] == pts[-1][2]]
    rss[name] = {"first_kb": life[0][1], "last_kb": life[-1][1], "max_kb": max(p[1] for p in life),
                 "samples": len(life), "restarted": len(life) < len(pts),
                 "alive_at_end": bool(samples[-1]["rss_kb"].get(name))}
RULE = ("after a warm-up of 60 s of a process's life, the highest RSS of the last quarter of it "
        "is at most 10 % (and at least 4 MiB) above the highest RSS of its first half: "
        "no new high-water mark late in the run")
def flat(name):
    pts = [(s["t"], s["rss_kb"][name]) for s in samples if s["rss_kb"].get(name) and s["pid"].get(name) == samples[-1]["pid"].get(name)]
    if not pts:
        return None
    t0 = pts[0][0] + 60
    pts = [p for p in pts if p[0] >= t0]
    if len(pts) < 8:
        return None
    half, quarter = pts[: len(pts) // 2], pts[len(pts) * 3 // 4:]
    base = max(v for _, v in half)
    return max(v for _, v in quarter) <= max(base * 1.10, base + 4096)
verdicts = {n: flat(n) for n in rss}
judged = [v for v in verdicts.values() if v is not None]
failed = sum(t["failed"] for t in transfers.values())
replay = {"client1_strongswan": ss_replay, "client2_plexnet": max(c2) if c2 else None,
          "client1_strongswan_icv_failures": ss_icv}
summary = {
    "seconds": int(T), "rate_mbit_per_client": int(rate),
    "lifetimes": {"strongswan_child_rekey_time_s": int(rekey), "refresh_lifesize_kb": int(kb),
                  "refresh_lifetime_min": 1},
    "faults": json.loads(faults), "transfers": transfers, "failed_transfers": failed,
    "client_replay_drops": replay, "rekeys": rekeys, "rss": rss,
    "memory_flat": {"rule": RULE, "per_process": verdicts, "flat": all(judged) if judged else None},
}
ok = (failed == 0 and ss_replay == 0 and (replay["client2_plexnet"] or 0) == 0
      and rekeys["routing_stack_child_sas_rekeyed"]["total"] + ss_rekeys > 0 and summary["memory_flat"]["flat"] is not False)
summary["pass"] = ok
summary["samples"] = samples
json.dump(summary, open(out, "w"), indent=1)
print(f"soak {T}s: {failed} failed transfers {transfers}")
print(f"  replay drops: client1 {ss_replay}, client2 {replay['client2_plexnet']}; faults {json.loads(faults)}")
print(f"  rekeys: routing stacks {rekeys['routing_stack_child_sas_rekeyed']}, strongSwan started {ss_rekeys}, "
      f"strongSwan rekeyed {ss_rekeyed}; memory flat: {summary['memory_flat']['flat']}")
for n, r in rss.items():
    print(f"  {n:<16} RSS first {r['first_kb']/1024:7.1f} MiB  last {r['last_kb']/1024:7.1f}  max {r['max_kb']/1024:7.1f}  flat {verdicts[n]}")
print(f"wrote {out}: {'PASS' if ok else 'FAIL'}")
sys.exit(0 if ok else 1)
PY
