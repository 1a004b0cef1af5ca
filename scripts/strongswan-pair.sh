#!/usr/bin/env bash
# strongSwan <-> strongSwan through kernel-libipsec between two namespaces of
# its own (the baseline DESIGN.md quotes): prints iperf3's Mbit/s for
# SECONDS seconds over an ESP tunnel (IKE PROPOSALS, ESP ESP_PROPOSALS).
# Usage: strongswan-pair.sh [SECONDS] [STREAMS]. Cleans up after itself.
set -euo pipefail
SECONDS_RUN=${1:-10}
STREAMS=${2:-1}
IKE_PROPOSALS=${IKE_PROPOSALS:-aes128-sha256-x25519}
ESP_PROPOSALS=${ESP_PROPOSALS:-aes128-sha1}
HERE=$(cd "$(dirname "$0")/.." && pwd)
A=plxss-a B=plxss-b
A_ADDR=198.18.250.1 B_ADDR=198.18.250.2
WORK=$(mktemp -d /var/tmp/plxss.XXXXXX)
cleanup() {
  for ns in $A $B; do
    for pid in $(ip netns pids $ns 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del $ns 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
cleanup_first() { for ns in $A $B; do ip netns del $ns 2>/dev/null || true; done; }
cleanup_first

ip netns add $A; ip netns add $B
ip link add ss-a netns $A type veth peer name ss-b netns $B
ip -n $A addr add $A_ADDR/24 dev ss-a; ip -n $B addr add $B_ADDR/24 dev ss-b
for ns in $A $B; do
  ip -n $ns link set lo up
  ip netns exec $ns sysctl -qw net.ipv4.conf.all.rp_filter=2 net.ipv6.conf.all.disable_ipv6=1
done
ip -n $A link set ss-a up; ip -n $B link set ss-b up

start_charon() { # ns dir local remote
  local ns=$1 dir=$2 local_addr=$3 remote=$4
  mkdir -p "$dir/run"
  sed -e "s|@DIR@|$dir|g" -e "s|@SWANCTL_DIR@|$dir|g" "$HERE/netns/strongswan/strongswan.conf.in" > "$dir/strongswan.conf"
  sed -e "s|@NAME@|pair|g" -e "s|@CHILD@|pair-child|g" -e "s|@LOCAL_ADDR@|$local_addr|" -e "s|@REMOTE_ADDR@|$remote|" \
      -e "s|@IKE_PROPOSALS@|$IKE_PROPOSALS|" -e "s|@ESP_PROPOSALS@|$ESP_PROPOSALS|" \
      -e "s|@LOCAL_ID@|$local_addr|" -e "s|@REMOTE_ID@|$remote|" -e "s|@PSK@|plexnet-pair|" \
      "$HERE/netns/strongswan/swanctl.conf.in" > "$dir/swanctl.conf"
  ip netns exec "$ns" sh -c "mount --bind $dir/run /run && STRONGSWAN_CONF=$dir/strongswan.conf exec /usr/lib/ipsec/charon" \
    > "$dir/charon.out" 2>&1 &
  disown
  for _ in $(seq 1 100); do
    STRONGSWAN_CONF=$dir/strongswan.conf swanctl --stats >/dev/null 2>&1 && break
    sleep 0.1
  done
  STRONGSWAN_CONF=$dir/strongswan.conf swanctl --load-all --file "$dir/swanctl.conf" >/dev/null 2>&1
}
start_charon $A "$WORK/a" $A_ADDR $B_ADDR
start_charon $B "$WORK/b" $B_ADDR $A_ADDR
STRONGSWAN_CONF=$WORK/a/strongswan.conf swanctl --initiate --child pair-child >/dev/null

ip netns exec $B iperf3 -s -1 -B $B_ADDR -D
sleep 0.5
ip netns exec $A iperf3 -c $B_ADDR -t "$SECONDS_RUN" -P "$STREAMS" -J > "$WORK/iperf.json"
python3 -c "
import json,sys
d=json.load(open('$WORK/iperf.json'))
if 'error' in d: sys.exit('iperf3: ' + d['error'])
print(round(d['end']['sum_received']['bits_per_second']/1e6, 1))"
