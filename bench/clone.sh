#!/usr/bin/env bash
# Clone benchmark (issue: clone replicas by streaming a physical backup).
#
# Loads >= 500 MB of InnoDB data into a sandbox primary, then, in the same run
# and alternating, times:
#   raw:      mariadb-backup --backup --stream=xbstream | socat | mbstream -x, then --prepare
#   flipover: the clone step of `flipover apply` (stop mysqld, stream donor ->
#             target agent, unpack, prepare, start mysqld on the copy)
# and prints each run, the medians and the ratio flipover / raw (target <= 1.10).
#
# Usage: bench/clone.sh [ROWS]   (default 520000 rows of ~1 KiB: about 600 MB on disk)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-520000}
rounds=${ROUNDS:-5}

scripts/install-deps
command -v socat >/dev/null || { apt-get install -y -q socat >&2; }
cargo build --release --workspace --bins >&2
bin=target/release/flipover

dir=$(mktemp -d /tmp/flipover-bench-clone.XXXXXX)
cleanup() { "$bin" sandbox down --dir "$dir/sb" >&2 || true; rm -rf "$dir"; }
trap cleanup EXIT

"$bin" sandbox up --servers 2 --dir "$dir/sb" >&2
sb=$dir/sb
db1=$(python3 -c "import json;print(json.load(open('$sb/sandbox.json'))['hosts'][0]['address'])")
db2=$(python3 -c "import json;print(json.load(open('$sb/sandbox.json'))['hosts'][1]['address'])")

echo "loading $rows rows into db1..." >&2
mariadb -S "$sb/db1/mysqld.sock" -uroot -e "
  CREATE TABLE shop.bench (id INT PRIMARY KEY, pad VARCHAR(1000)) ENGINE=InnoDB;
  INSERT INTO shop.bench SELECT seq, REPEAT(MD5(seq), 30) FROM shop.seq_1_to_$rows;"
datadir_mb=$(du -sm "$sb/db1/data" | cut -f1)
innodb_mb=$( (du -smc "$sb"/db1/data/ib* "$sb"/db1/data/undo* "$sb"/db1/data/shop "$sb"/db1/data/mysql 2>/dev/null || true) | tail -1 | cut -f1)
echo "db1 datadir: ${datadir_mb} MB (InnoDB files the backup copies: ${innodb_mb} MB)" >&2

raw_run() {
  local scratch=$dir/raw-copy port=39999
  rm -rf "$scratch"; mkdir -p "$scratch" "$dir/raw-tmp"
  local start end
  start=$(date +%s.%N)
  socat -u "TCP-LISTEN:$port,bind=$db2,reuseaddr" - | mbstream -x -C "$scratch" &
  local receiver=$!
  sleep 0.05
  mariadb-backup --defaults-file="$sb/db1/my.cnf" --socket="$sb/db1/mysqld.sock" --backup --stream=xbstream --user=root \
      --target-dir="$dir/raw-tmp" 2>"$dir/raw-backup.log" | socat -u - "TCP:$db2:$port"
  wait "$receiver"
  mariadb-backup --prepare --use-memory=256M --target-dir="$scratch" >"$dir/raw-prepare.log" 2>&1
  end=$(date +%s.%N)
  rm -rf "$scratch" "$dir/raw-tmp"
  python3 -c "print(f'{$end - $start:.3f}')"
}

flipover_run() {
  # The first clone fills the empty db2; later ones replace it (--replace).
  local log=$dir/apply.log
  "$bin" apply -f "$sb/topology.toml" --auto-approve $1 >/dev/null 2>"$log"
  grep -oP 'clone db2 from db1: done in \K[0-9.]+' "$log"
}

# One discarded raw run first, so neither side pays for a cold page cache.
warm=$(raw_run); echo "warm-up: raw pipeline ${warm}s (not counted)" >&2

raws=(); flips=()
for i in $(seq 1 "$rounds"); do
  r=$(raw_run); raws+=("$r"); echo "round $i: raw pipeline ${r}s" >&2
  if [ "$i" -eq 1 ]; then f=$(flipover_run ""); else f=$(flipover_run "--replace db2"); fi
  flips+=("$f"); echo "round $i: flipover clone step ${f}s" >&2
done

python3 - "${raws[*]}" "${flips[*]}" "$datadir_mb" "$innodb_mb" <<'PY'
import statistics, sys
raw = [float(x) for x in sys.argv[1].split()]
flip = [float(x) for x in sys.argv[2].split()]
mr, mf = statistics.median(raw), statistics.median(flip)
print(f"data: db1 datadir {sys.argv[3]} MB, of which InnoDB files {sys.argv[4]} MB")
print(f"raw pipeline (backup | socat | mbstream -x, prepare): runs {raw} median {mr:.3f}s min {min(raw):.3f}s")
print(f"flipover clone step:                                  runs {flip} median {mf:.3f}s min {min(flip):.3f}s")
print(f"ratio flipover/raw: median {mf / mr:.3f}, min {min(flip) / min(raw):.3f} (target <= 1.10)")
PY
