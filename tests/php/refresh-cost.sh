#!/usr/bin/env bash
# What a php-tuf refresh costs Composer's side: bytes downloaded (per file) and time, for a first
# refresh from only the initial root and for a refresh after one publish, on a repository our
# signers write (embedded mode) with BINS hashed bins, served by `tuf-client serve`. Each client is
# tests/php/verify.php --cost, set up as Composer's TUF plugin sets up php-tuf.
# Usage: PHP_TUF_CHECKOUTS=DIR tests/php/refresh-cost.sh BINS [BINS...]
# Environment:
#   TUF_BIN_DIR  the built tuf-signer and tuf-client (default target/release)
#   VARIANTS     php-tuf variants to measure (default "0.1.7 0.1.7+keep-unchanged-targets"):
#                VERSION (a checkout: 0.1.7, main), or VERSION+NAME for that checkout with
#                tests/php/patches/php-tuf-VERSION-NAME.patch applied (`git am`, in a copy)
#   RUNS         runs of each refresh (default 3; each from the same state; the median time is shown)
#   KEEP         a folder to keep the repositories and logs in (default: a temporary one, removed)
# Prints one table row per bins, variant and refresh, then the files each refresh fetched.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: PHP_TUF_CHECKOUTS=DIR $0 BINS [BINS...]" >&2; exit 2; }
B=$(cd "${TUF_BIN_DIR:-$TOP/target/release}" && pwd)
C=$(cd "${PHP_TUF_CHECKOUTS:-$TOP/.php-tuf}" && pwd)
VARIANTS=${VARIANTS:-0.1.7 0.1.7+keep-unchanged-targets}
RUNS=${RUNS:-3}
for tool in tuf-signer tuf-client; do
  [ -x "$B/$tool" ] || { echo "no $B/$tool (cargo build --release, or TUF_BIN_DIR)" >&2; exit 2; }
done
unset AMQP_URL  # the embedded mode

if [ -n "${KEEP:-}" ]; then
  W=$KEEP; mkdir -p "$W"
else
  W=$(mktemp -d "${TMPDIR:-/tmp}/refresh-cost.XXXXXX")
fi
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

# One autoloader per variant: assemble.sh over the checkouts, the patched ones in a copy.
declare -A AUTOLOAD
for variant in $VARIANTS; do
  version=${variant%%+*}
  if [ "$variant" = "$version" ]; then
    dir=$C
  else
    patch=$HERE/patches/php-tuf-$version-${variant#*+}.patch
    [ -f "$patch" ] || { echo "no patch $patch for $variant" >&2; exit 2; }
    dir=$W/checkouts-$variant
    rm -rf "$dir"; mkdir -p "$dir"
    for c in "$C"/*; do ln -s "$c" "$dir/$(basename "$c")"; done
    rm "$dir/php-tuf-$version"
    git -c init.defaultBranch=main clone -q --no-checkout "$C/php-tuf-$version" "$dir/php-tuf-$version"
    git -C "$dir/php-tuf-$version" -c advice.detachedHead=false checkout -q "$(git -C "$C/php-tuf-$version" rev-parse HEAD)"
    git -C "$dir/php-tuf-$version" -c user.name=refresh-cost -c user.email=refresh-cost@invalid am -q "$patch"
  fi
  PHP_TUF_CHECKOUTS=$dir "$HERE/assemble.sh" "$W/autoload-$variant" >/dev/null
  AUTOLOAD[$variant]=$W/autoload-$variant/autoload-$version.php
done

free_port() { php -r '$s = stream_socket_server("tcp://127.0.0.1:0"); echo explode(":", stream_socket_get_name($s, false))[1];'; }

# A release file of SIZE random bytes at releases/NAME.
release() { mkdir -p "$(dirname "$1/$2")"; head -c "$3" /dev/urandom > "$1/$2"; }

# publish DIR: signs every file in DIR and waits until clients can see it.
publish() {
  "$B/tuf-client" add-targets --inbox "$R/inbox" --targets-dir "$R/repo/targets" --wait \
    --repo "$R/repo" --submitter-key "$R/keys/submitter.pem" "$1" >> "$R/client.log" 2>&1
}

# The URL verify.php fetches target NAME from (consistent snapshots: HASH.basename).
target_url() {
  local sha; sha=$(sha256sum "$R/rel-$2/$1" | cut -d' ' -f1)
  echo "http://127.0.0.1:$port/targets/$(dirname "$1")/$sha.$(basename "$1")"
}

# measure LABEL STATE TARGET RELDIR: RUNS refreshes, each from a copy of STATE as it is now
# (a fresh state for the first refresh); keeps the last run's state as STATE.
measure() {
  local variant=$1 refresh=$2 state=$3 target=$4 reldir=$5 i out times=()
  for i in $(seq "$RUNS"); do
    rm -rf "$state.run"
    [ -d "$state" ] && cp -a "$state" "$state.run"
    out=$(php "$HERE/verify.php" --autoload "${AUTOLOAD[$variant]}" --root "$R/keys/root.json" \
      --state "$state.run" --metadata-url "http://127.0.0.1:$port/metadata/" --cost \
      --target "$target=$(target_url "$target" "$reldir")") \
      || { echo "verify.php failed ($variant, $refresh):" >&2; echo "$out" >&2; exit 1; }
    times+=("$(sed -n 's/^cost refresh: .* in [0-9]* files, \([0-9.]*\) s.*/\1/p' <<< "$out")")
  done
  rm -rf "$state"; mv "$state.run" "$state"
  local summary median
  summary=$(grep '^cost refresh: ' <<< "$out")
  median=$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(( (RUNS + 1) / 2 ))p")
  read -r bytes files mem <<< "$(sed 's/^cost refresh: \([0-9]*\) bytes in \([0-9]*\) files, .*peak memory \([0-9.]*\) MB/\1 \2 \3/' <<< "$summary")"
  printf '%6s  %-30s %-14s %5s %11s %9s %8s\n' "$bins" "$variant" "$refresh" "$files" "$bytes" "$median" "$mem" >> "$W/table"
  {
    echo "== $bins bins, php-tuf $variant, $refresh refresh (times: ${times[*]})"
    grep '^cost ' <<< "$out"
  } >> "$W/detail"
}

: > "$W/table"; : > "$W/detail"
for bins in "$@"; do
  R=$W/bins-$bins
  rm -rf "$R"; mkdir -p "$R"
  echo "== $bins bins: tuf-signer init, run --all, a first publish of 20 releases" >&2
  "$B/tuf-signer" init --repo "$R/repo" --keys "$R/keys" --bins "$bins" > "$R/init.log" 2>&1
  "$B/tuf-signer" run --all --repo "$R/repo" --keys "$R/keys" --inbox "$R/inbox" 2> "$R/signer.log" &
  pids+=($!)
  for i in $(seq 20); do release "$R/rel-1" "vendor$i/pkg$i/1.0.0.0" 20000; done
  publish "$R/rel-1"
  port=$(free_port)
  "$B/tuf-client" serve --listen "127.0.0.1:$port" "$R/repo" 2> "$R/serve.log" &
  pids+=($!)
  for _ in $(seq 50); do
    curl -fso /dev/null "http://127.0.0.1:$port/metadata/timestamp.json" && break
    sleep 0.2
  done
  ls -l "$R"/repo/metadata/*.snapshot.json "$R"/repo/metadata/*.targets.json | tail -n 4 >> "$W/detail"

  for variant in $VARIANTS; do
    measure "$variant" first "$R/state-$variant" vendor1/pkg1/1.0.0.0 1
  done
  echo "== $bins bins: one publish (one release)" >&2
  release "$R/rel-2" vendor0/new/1.0.0.0 20000
  publish "$R/rel-2"
  for variant in $VARIANTS; do
    measure "$variant" "after publish" "$R/state-$variant" vendor0/new/1.0.0.0 2
  done
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  pids=()
done

printf '%6s  %-30s %-14s %5s %11s %9s %8s\n' bins php-tuf refresh files bytes seconds "peak MB"
cat "$W/table"
echo
cat "$W/detail"
