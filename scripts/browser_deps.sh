#!/usr/bin/env bash
# Debian's Chromium and a CJK font for the browser tests (Playwright's own browser download
# cannot be reached here; without a CJK font Chinese renders as empty boxes). Safe to run again.
set -euo pipefail
have_font() { fc-list :lang=zh 2>/dev/null | grep -q .; }
if command -v chromium >/dev/null && have_font; then
  exit 0
fi
sudo=()
[[ $(id -u) -ne 0 ]] && sudo=(sudo)
echo "installing chromium and a CJK font (apt)…"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
