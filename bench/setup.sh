#!/bin/sh
# Tools the benchmarks compare against and drive (Debian packages).
set -e
if ! command -v haproxy >/dev/null || ! command -v nginx >/dev/null || ! command -v wrk >/dev/null \
        || ! command -v cc >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx-light wrk gcc libc6-dev
fi
