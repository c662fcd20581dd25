#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the web page's browser test (tests/e2e/test_web_page.py) and the
# web bench. Playwright (from PyPI) drives /usr/bin/chromium; `playwright install` cannot download its own
# browser here.
#
#   scripts/ensure-chromium.sh      # quiet and fast when chromium is already there
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium from Debian's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    exit 0
fi
echo "The browser test needs Debian's chromium at /usr/bin/chromium: run 'sudo apt-get install chromium'." >&2
exit 1
