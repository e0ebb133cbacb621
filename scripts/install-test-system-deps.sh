#!/bin/sh
# System packages the test suite needs: Debian's Chromium renders the HTML report headlessly.
# Installed only when missing; skipped (with a note) where apt-get cannot run.
set -u
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "note: could not install chromium; the report-rendering test will be skipped"
else
    echo "note: chromium is not installed and apt-get needs root; the report-rendering test will be skipped"
fi
