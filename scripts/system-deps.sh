#!/bin/sh
# Install the Debian packages edge-assistant uses, when running as root with apt and they are missing.
# Not root: print the command to run instead and go on (everything but audio still works).
set -eu
PKGS="libportaudio2 espeak-ng sox pulseaudio pulseaudio-utils libasound2-plugins cmake iproute2"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "note: install these system packages with your package manager:$missing" >&2
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "note: missing system packages; run: sudo apt-get install -y$missing" >&2
    exit 0
fi
echo "installing system packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
