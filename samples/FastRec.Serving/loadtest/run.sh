#!/usr/bin/env bash
# Load test of samples/FastRec.Serving on 127.0.0.1 with autocannon (npm, installed into a scratch folder, never committed):
# POST /score (or POST /recommend) for SECONDS at each connection count; prints requests/s, p50/p99 latency and errors,
# then stops the host.
# usage: samples/FastRec.Serving/loadtest/run.sh CHECKPOINT [SECONDS=10] [CONNECTIONS="1 8 64"] [ITEM_IDS_FILE]
#        samples/FastRec.Serving/loadtest/run.sh --recommend TOWER.frts [SECONDS=10] [CONNECTIONS="1 8 64"] [BODIES_FILE]
#   ITEM_IDS_FILE: one item id per line (default: the ids of the vendored movies.dat, for MovieTweetings checkpoints).
#   BODIES_FILE: /recommend request bodies, one JSON object per line (default: recommend-movietweetings.jsonl beside this
#     script, ids of the vendored movies.dat, for a `fastrec tower` recommender trained on the vendored data).
#   Environment: PORT (default 5089), LOADTEST_DIR (scratch folder, default out/loadtest), HOST_ARGS (e.g. "--precision int16").
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
endpoint=score
if [ "${1:-}" = "--recommend" ]; then endpoint=recommend; shift; fi
usage="usage: run.sh CHECKPOINT [SECONDS] [CONNECTIONS] [ITEM_IDS_FILE] | run.sh --recommend TOWER.frts [SECONDS] [CONNECTIONS] [BODIES_FILE]"
model=${1:?$usage}
seconds=${2:-10}
conns=${3:-"1 8 64"}
port=${PORT:-5089}
scratch=${LOADTEST_DIR:-$root/out/loadtest}
mkdir -p "$scratch"
if [ "$endpoint" = score ]; then
  ckpt=$(cd "$model" && pwd)
  ids=${4:-$scratch/item-ids.txt}
  [ -n "${4:-}" ] || cut -d: -f1 "$root/data/movietweetings-100k/movies.dat" > "$ids"
  serve=(--model "$ckpt")
  sources=("$ckpt" "$ids")
else
  [ -f "$model" ] || { echo "run.sh --recommend: '$model' is not a file (a recommender from \`fastrec tower --out FILE.frts\`)" >&2; exit 2; }
  tower=$(cd "$(dirname "$model")" && pwd)/$(basename "$model")
  bodies=${4:-$here/recommend-movietweetings.jsonl}
  serve=(--recommender "$tower")
  sources=("$bodies")
fi
[ -d "$scratch/node_modules/autocannon" ] || (cd "$scratch" && npm install --no-save --no-audit --no-fund autocannon@9 >/dev/null)

dotnet build -c Release "$root/samples/FastRec.Serving" -v q -nologo >/dev/null
dotnet "$root/samples/FastRec.Serving/bin/Release/net10.0/FastRec.Serving.dll" "${serve[@]}" --urls "http://127.0.0.1:$port" ${HOST_ARGS:-} \
  > "$scratch/host.log" 2>&1 &
host=$!
trap 'kill -TERM $host 2>/dev/null || true; wait $host 2>/dev/null || true' EXIT
for _ in $(seq 1 240); do
  curl -fs "http://127.0.0.1:$port/healthz" > "$scratch/healthz.json" 2>/dev/null && break
  kill -0 $host 2>/dev/null || { cat "$scratch/host.log"; exit 1; }
  sleep 0.5
done
echo "host: $(cat "$scratch/healthz.json")"
LOADTEST_MODULES="$scratch/node_modules" node "$here/loadtest.js" "http://127.0.0.1:$port" "$endpoint" "${sources[@]}" "$seconds" $conns
