#!/usr/bin/env bash
# Install, once, the Debian packages the tests need: Chromium (Playwright drives it; it never downloads a
# browser), espeak-ng (the voice tests speak real speech into Chromium's fake microphone) and nginx (the
# production topology in deploy/ load-balances its workers behind it). Quiet and idempotent.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
echo "Installing ${missing[*]} for the tests..."
# Debian's nginx package starts a system nginx on port 80 when installed. deploy/ runs its own nginx, with its
# own config, from a run directory; a system one would only take a port, so forbid service starts during the
# install (policy-rc.d, honoured by invoke-rc.d and deb-systemd-invoke) unless the machine already has a policy.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    own_policy=1
fi
restore_policy() { if [ -n "$own_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap restore_policy EXIT
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# Nor start it at the next boot, where systemd manages services.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
fi
