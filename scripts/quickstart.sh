#!/usr/bin/env bash
# From a fresh clone to a first isolated job, as root: installs dependencies, builds, writes a local CA,
# certificates and configs under ./local, starts the daemon in the background (log: local/joblet.log) and
# runs `rnx run ps aux` through it. Safe to run again: an existing ./local and a running daemon are reused.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

dir="$PWD/local"
if [ ! -f "$dir/joblet-config.yml" ]; then
  echo "==> joblet init --dir $dir"
  bin/joblet init --dir "$dir"
fi

if [ -f "$dir/joblet.pid" ] && kill -0 "$(cat "$dir/joblet.pid")" 2>/dev/null; then
  echo "==> daemon already running (pid $(cat "$dir/joblet.pid"))"
else
  echo "==> starting the daemon (log: $dir/joblet.log)"
  nohup bin/joblet --config "$dir/joblet-config.yml" >>"$dir/joblet.log" 2>&1 &
  echo $! >"$dir/joblet.pid"
  for _ in $(seq 1 100); do
    grep -q '"joblet serving"' "$dir/joblet.log" 2>/dev/null && break
    kill -0 "$(cat "$dir/joblet.pid")" 2>/dev/null || { cat "$dir/joblet.log"; exit 1; }
    sleep 0.1
  done
fi

echo "==> bin/rnx --config $dir/rnx-config.yml run ps aux"
bin/rnx --config "$dir/rnx-config.yml" run ps aux
echo
echo "The job saw only itself. Try: bin/rnx --config $dir/rnx-config.yml list"
echo "Stop the daemon (jobs keep running): kill \$(cat $dir/joblet.pid)"
