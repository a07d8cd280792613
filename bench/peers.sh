#!/bin/sh
# Measure iqresponder beside the reference peers of ../shared/bench, in one run each for two
# populations: every request from one client, and every request from one of 100,000 senders
# (a server's population). The harness is copied to run/shared-bench (the original stays
# read-only) and gets its own virtualenv there; extra arguments go to both runs of its run.py.
set -e
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$ROOT/../shared/bench}
WORK=$ROOT/run/shared-bench
mkdir -p "$WORK"
cp -r "$SHARED"/. "$WORK"
chmod -R u+w "$WORK"
cd "$WORK"
[ -x .venv/bin/python ] || ./setup.sh
PEER="iqresponder=$ROOT/.venv/bin/python $ROOT/bench/component_peer.py --port {port} --secret {secret} --jid {jid} --extra-handlers {extra}"
.venv/bin/python run.py --handlers-scan --scan-peers twisted-words,slixmpp,iqresponder --peer "$PEER" "$@"
.venv/bin/python run.py --senders 100000 --peer "$PEER" "$@"
