#!/usr/bin/env bash
# Installs the Debian packages that scripts/host-needs.list names and this
# host lacks; --check-only lists the missing ones and exits 1 if there are any.
# `plexnet doctor` checks the same list item by item (commands, files,
# charon plugins, kernel features), so the two cannot drift.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list="$here/host-needs.list"
[ -r "$list" ] || { echo "deps: cannot read $list" >&2; exit 1; }
# The third column of every non-comment line, once each, "-" (kernel) left out.
mapfile -t PACKAGES < <(awk '!/^[[:space:]]*(#|$)/ && $3 != "-" { print $3 }' "$list" | sort -u)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${1:-}" = "--check-only" ]; then
  [ ${#missing[@]} -eq 0 ] && exit 0
  echo "missing: ${missing[*]}"; exit 1
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PACKAGES[@]} packages of scripts/host-needs.list present"; exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing ${missing[*]}; run as root (sudo make deps)" >&2; exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture: answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -q
# --no-install-recommends keeps the install small, so every package the
# project needs must be named in the list (charon's gcm and openssl plugins
# are only a "Recommends" of strongSwan).
apt-get install -y -q --no-install-recommends "${missing[@]}"
