#!/bin/sh
# Runs the shared black-box conformance harness (recorded answers of the Go gateway 1.5.1)
# against our release binary. The harness lives outside this repository, next to it in
# ../shared/conformance; pass its directory as $1 to use another place.
set -eu
cd "$(dirname "$0")/.."
harness=${1:-../shared/conformance}
[ -f "$harness/conformance.py" ] || { echo "no conformance harness at $harness" >&2; exit 2; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/pushgateway --web.listen-address=127.0.0.1:$port --web.enable-admin-api --web.enable-lifecycle &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
python3 "$harness/conformance.py" compare --url http://127.0.0.1:$port --ref "$harness/reference-1.5.1.json"
