#!/usr/bin/env bash
# Gatehouse token-endpoint benchmark — the single command (see bench/README.md):
#
#     bash bench/run.sh
#
# Measures, in one run on this machine:
#   * client_credentials tokens/s and p50/p99 latency at 2 and 16 connections for
#     `gatehouse serve` and for panva's oidc-provider (RS256 JWT access tokens), both over
#     HTTPS with the same ECDSA P-256 leaf certificate, load from `wrk --latency` on 127.0.0.1;
#   * the RS256 signing ceiling (every core signing in a loop, crates/jose/examples/sign_ceiling.rs);
#   * idle RSS of `gatehouse serve` (after start and after the load, settled);
#   * cold start of `gatehouse serve` to the first 200 on discovery (data dir already exists);
# prints a table with ratios and PASS/FAIL per target, and rewrites bench/RESULTS.md.
#
# Every phase is bounded in time; all processes it starts are stopped by PID and its temp
# dir is removed on exit (also on Ctrl-C). Raw outputs of the last run: bench/out/last-run/.
#
# Knobs (env): DURATION=15 (s per measured case)  WARMUP=5 (s, discarded, per case)
#   CONNS="2 16"  WRK_THREADS=1  SIGN_SECS=10  COLD_RUNS=7  SETTLE=5 (s before RSS reads)
#   QUIET_PCT=10 QUIET_MAX=90 (before each measurement wait until the machine is < QUIET_PCT %
#   busy for 2 s, at most QUIET_MAX s — other tenants' compilers share these 2 cores)
#   OTHER_MAX=15 RETRIES=2 (a case during which foreign load exceeded OTHER_MAX % of a core is
#   measured again, up to RETRIES more times; the attempt with the least foreign load is kept)
#   PERF=1 (also `perf record` Gatehouse during its 16-connection case; report in out/last-run)
#   NO_RESULTS=1 (do not rewrite RESULTS.md)   SKIP_BUILD=1 (use the existing release binary)
#   GATEHOUSE_BIN=path (measure another build, e.g. an unstripped one for PERF=1)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-5}
CONNS=${CONNS:-"2 16"}
WRK_THREADS=${WRK_THREADS:-1}
SIGN_SECS=${SIGN_SECS:-10}
COLD_RUNS=${COLD_RUNS:-7}
SETTLE=${SETTLE:-5}
QUIET_PCT=${QUIET_PCT:-10}
QUIET_MAX=${QUIET_MAX:-90}
OTHER_MAX=${OTHER_MAX:-15}
RETRIES=${RETRIES:-2}
PERF=${PERF:-0}
COMMAND_LINE="bash bench/run.sh${*:+ $*}"
for v in DURATION WARMUP WRK_THREADS SIGN_SECS COLD_RUNS SETTLE QUIET_PCT QUIET_MAX OTHER_MAX RETRIES PERF NO_RESULTS SKIP_BUILD CONNS GATEHOUSE_BIN; do
  if [ -n "${!v+x}" ] && [ "$(env | grep -c "^$v=")" -gt 0 ]; then COMMAND_LINE="$v=\"${!v}\" $COMMAND_LINE"; fi
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
OUT="$BENCH_DIR/out/last-run"
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
  done
  if [ -d "$WORK" ]; then
    rm -rf "$OUT"; mkdir -p "$OUT"
    for f in "$WORK"/*; do [ "${f##*/}" = data ] || cp -r "$f" "$OUT"/ 2>/dev/null || true; done
    rm -rf "$WORK"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() { # stop one process we started, by PID
  local p=$1
  kill -TERM "$p" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}

# ---------------------------------------------------------------- 0. tools
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
[ -x /usr/bin/time ] || need_apt+=(time)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing with apt: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y "${need_apt[@]}" >/dev/null 2>&1 \
    || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${need_apt[@]}" >/dev/null; } \
    || die "apt-get install ${need_apt[*]} failed"
fi
if [ ! -f "$BENCH_DIR/node_modules/oidc-provider/package.json" ]; then
  log "installing oidc-provider into bench/node_modules (npm)"
  if [ -f "$BENCH_DIR/package-lock.json" ]; then
    (cd "$BENCH_DIR" && npm ci --no-audit --no-fund >/dev/null)
  else
    (cd "$BENCH_DIR" && npm install --no-audit --no-fund >/dev/null)
  fi
fi
command -v cargo >/dev/null || die "cargo not found (install Rust)"

# ---------------------------------------------------------------- 1. build
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  log "building gatehouse (release) and the sign_ceiling example"
  (cd "$ROOT" && cargo build --release -p gatehouse 2>&1 | tail -n 3) >&2
  (cd "$ROOT" && cargo build --release -p gatehouse-jose --example sign_ceiling 2>&1 | tail -n 3) >&2
fi
GH=${GATEHOUSE_BIN:-"$ROOT/target/release/gatehouse"}
[ -x "$GH" ] || die "$GH not built"

# ---------------------------------------------------------------- helpers
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }                 # utime+stime of a PID
sysv() { awk '/^cpu /{idle=$5+$6; tot=0; for(i=2;i<=NF;i++) tot+=$i; print tot-idle, tot, $8, $9}' /proc/stat; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/{print $2}' "/proc/$1/status"; }
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
KV="$WORK/results.kv"
kv() { printf '%s=%s\n' "$1" "$2" >> "$KV"; }

# Wait (bounded) until the whole machine is < QUIET_PCT % busy over two consecutive 1-s windows.
quiet_gate() {
  local label=$1 t0 busy ok=0 b0 a0 b1 a1 x y
  t0=$(date +%s)
  while :; do
    read -r b0 a0 x y < <(sysv); sleep 1; read -r b1 a1 x y < <(sysv)
    busy=$(( 100 * (b1 - b0) / (a1 - a0 > 0 ? a1 - a0 : 1) ))
    if [ "$busy" -lt "$QUIET_PCT" ]; then ok=$((ok + 1)); else ok=0; fi
    [ "$ok" -ge 2 ] && break
    if [ $(( $(date +%s) - t0 )) -ge "$QUIET_MAX" ]; then
      log "  machine not quiet after ${QUIET_MAX}s (last 1-s window ${busy}% busy): measuring anyway, see 'other'"
      break
    fi
  done
  kv "$label.quiet_wait_s" "$(( $(date +%s) - t0 ))"
}

wait_ready() { # URL CAFILE TIMEOUT_S PID
  local url=$1 ca=$2 t=$3 pid=$4 i
  for i in $(seq $((t * 20))); do
    kill -0 "$pid" 2>/dev/null || return 1
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$ca" "$url" 2>/dev/null || true)" = 200 ]; then return 0; fi
    sleep 0.05
  done
  return 1
}

# One measured attempt: LABEL SERVER_PID CONNS URL BODY ATTEMPT -> $WORK/wrk-KEY.aN.{txt,kv}
measure_once() {
  local label=$1 pid=$2 c=$3 url=$4 body=$5 n=$6 key="$1.c$3"
  local f="$WORK/wrk-$key.a$n" s0 s1 t0 t1 b0 a0 si0 st0 b1 a1 si1 st1 perfpid=""
  quiet_gate "$key.a$n"
  log "  $label, $c connections (attempt $n): ${WARMUP}s warm-up + ${DURATION}s measured (wrk -t$WRK_THREADS)"
  FORM_BODY="$body" timeout $((WARMUP + 10)) wrk -t"$WRK_THREADS" -c"$c" -d"${WARMUP}s" \
    -s "$BENCH_DIR/post_form.lua" "$url" > "$f.warmup.txt" 2>&1 || true
  if [ "$PERF" = 1 ] && [ "$label" = gatehouse ] && [ "$c" = 16 ] && [ "$n" = 1 ] && command -v perf >/dev/null; then
    perf record -F 499 -g -p "$pid" -o "$WORK/perf-gatehouse-c16.data" -- sleep "$DURATION" \
      > "$WORK/perf-record.log" 2>&1 &
    perfpid=$!; PIDS+=("$perfpid")
  fi
  s0=$(ticks "$pid"); t0=$(date +%s.%N); read -r b0 a0 si0 st0 < <(sysv)
  # The subshell's cutime+cstime after wrk exits = CPU used by timeout + wrk.
  (
    FORM_BODY="$body" timeout $((DURATION + 15)) wrk -t"$WRK_THREADS" -c"$c" -d"${DURATION}s" --latency \
      -s "$BENCH_DIR/post_form.lua" "$url" > "$f.txt" 2>&1 || true
    read -r -a st < "/proc/$BASHPID/stat"
    echo $(( st[15] + st[16] )) > "$f.ticks"
  )
  s1=$(ticks "$pid"); t1=$(date +%s.%N); read -r b1 a1 si1 st1 < <(sysv)
  if [ -n "$perfpid" ]; then wait "$perfpid" 2>/dev/null || true; fi
  {
    echo "$key.server_ticks=$((s1 - s0))"
    echo "$key.wrk_ticks=$(cat "$f.ticks")"
    echo "$key.wall_s=$(python3 -c "print($t1-$t0)")"
    echo "$key.machine_busy_ticks=$((b1 - b0))"
    echo "$key.machine_total_ticks=$((a1 - a0))"
    echo "$key.softirq_ticks=$((si1 - si0))"
    echo "$key.steal_ticks=$((st1 - st0))"
  } > "$f.kv"
  # foreign load in % of one core: busy - server - wrk - softirq - steal
  OTHER_PCT=$(( NCPU * 100 * ((b1 - b0) - (s1 - s0) - (si1 - si0) - (st1 - st0)) / ((a1 - a0) > 0 ? (a1 - a0) : 1) \
    - 100 * $(cat "$f.ticks") / CLK_TCK / DURATION ))
  grep -E 'Requests/sec|^ +99%' "$f.txt" | tr -s ' ' | sed 's/^/    /' >&2 || true
  log "    foreign load during the attempt: ${OTHER_PCT}% of a core"
}

# One case: up to 1+RETRIES attempts while foreign load > OTHER_MAX %; keep the cleanest.
run_case() {
  local label=$1 pid=$2 c=$3 url=$4 body=$5 key="$1.c$3" n best="" best_other=""
  for n in $(seq $((RETRIES + 1))); do
    measure_once "$label" "$pid" "$c" "$url" "$body" "$n"
    if [ -z "$best" ] || [ "$OTHER_PCT" -lt "$best_other" ]; then best=$n; best_other=$OTHER_PCT; fi
    [ "$OTHER_PCT" -le "$OTHER_MAX" ] && break
    [ "$n" -le "$RETRIES" ] && log "    foreign load ${OTHER_PCT}% > ${OTHER_MAX}%: measuring again"
  done
  cp "$WORK/wrk-$key.a$best.txt" "$WORK/wrk-$key.txt"
  cat "$WORK/wrk-$key.a$best.kv" >> "$KV"
  kv "$key.attempts" "$n"
  kv "$key.kept_attempt" "$best"
}

# ---------------------------------------------------------------- 2. data dir + credentials
GH_PORT=$(free_port)
OP_PORT=$(free_port)
while [ "$OP_PORT" = "$GH_PORT" ]; do OP_PORT=$(free_port); done
DATA="$WORK/data"
kv clk_tck "$CLK_TCK"; kv ncpu "$NCPU"; kv duration "$DURATION"; kv warmup "$WARMUP"
kv wrk_threads "$WRK_THREADS"; kv conns "$CONNS"; kv sign_secs "$SIGN_SECS"; kv settle "$SETTLE"
kv command "$COMMAND_LINE"

log "first start: creating the data dir ($DATA) with 'gatehouse demo --json'"
t0=$(date +%s%N)
"$GH" demo --json --data-dir "$DATA" --listen "127.0.0.1:$GH_PORT" > "$WORK/demo.json" 2> "$WORK/demo.err" \
  || die "gatehouse demo failed: $(cat "$WORK/demo.err")"
kv first_start_demo_ms "$(( ($(date +%s%N) - t0) / 1000000 ))"
read -r TID CLIENT_ID CLIENT_SECRET < <(python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); a=d["apps"]["daemon"]
print(d["tenant_id"], a["client_id"], a["client_secret"])' "$WORK/demo.json")
[ -f "$DATA/tls/ca.pem" ] || die "no $DATA/tls/ca.pem after demo"
CA="$DATA/tls/ca.pem"
GH_BODY="grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
OP_CLIENT=bench-client
OP_SECRET=bench-secret-0123456789abcdef0123456789
OP_BODY="grant_type=client_credentials&client_id=$OP_CLIENT&client_secret=$OP_SECRET&scope=User.Read.All"

# ---------------------------------------------------------------- 3. cold start
quiet_gate coldstart
log "cold start: $COLD_RUNS runs of spawn -> first 200 on discovery (data dir exists)"
python3 "$BENCH_DIR/lib/coldstart.py" "$GH" "$DATA" "$GH_PORT" "$TID" "$COLD_RUNS" "$WORK/coldstart.json" >&2

# ---------------------------------------------------------------- 4. servers up
log "starting gatehouse serve on 127.0.0.1:$GH_PORT"
"$GH" serve --data-dir "$DATA" --listen "127.0.0.1:$GH_PORT" > "$WORK/gatehouse.log" 2>&1 &
GH_PID=$!; PIDS+=("$GH_PID")
wait_ready "https://127.0.0.1:$GH_PORT/$TID/v2.0/.well-known/openid-configuration" "$CA" 20 "$GH_PID" \
  || die "gatehouse did not become ready: $(tail -5 "$WORK/gatehouse.log")"
sleep "$SETTLE"
kv gh.rss_idle_start_kib "$(rss_kib "$GH_PID")"
kv gh.threads "$(awk '/^Threads:/{print $2}' "/proc/$GH_PID/status")"

log "starting oidc-provider on 127.0.0.1:$OP_PORT (same TLS leaf as gatehouse)"
(cd "$BENCH_DIR" && exec env PORT="$OP_PORT" TLS_CERT="$DATA/tls/server.pem" TLS_KEY="$DATA/tls/server-key.pem" \
  CLIENT_ID="$OP_CLIENT" CLIENT_SECRET="$OP_SECRET" NODE_ENV=production node oidc-provider.mjs) \
  > "$WORK/oidc-provider.log" 2>&1 &
OP_PID=$!; PIDS+=("$OP_PID")
wait_ready "https://127.0.0.1:$OP_PORT/.well-known/openid-configuration" "$CA" 30 "$OP_PID" \
  || die "oidc-provider did not become ready: $(tail -5 "$WORK/oidc-provider.log")"

GH_TOKEN_URL="https://127.0.0.1:$GH_PORT/$TID/oauth2/v2.0/token"
OP_TOKEN_URL="https://127.0.0.1:$OP_PORT/token"
# Smoke: each must answer 200 with an RS256 JWT access token.
for pair in "gatehouse|$GH_TOKEN_URL|$GH_BODY" "oidc-provider|$OP_TOKEN_URL|$OP_BODY"; do
  IFS='|' read -r name url body <<< "$pair"
  code=$(curl -s -o "$WORK/token-$name.json" -w '%{http_code}' --cacert "$CA" -X POST "$url" --data "$body")
  [ "$code" = 200 ] || die "$name token endpoint answered $code: $(head -c 400 "$WORK/token-$name.json")"
  python3 - "$WORK/token-$name.json" "$name" >> "$KV" <<'EOF' || die "$name did not issue an RS256 JWT"
import base64, json, sys
t = json.load(open(sys.argv[1]))["access_token"]
h, p, s = t.split(".")
d = lambda x: json.loads(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))
hdr, claims = d(h), d(p)
assert hdr["alg"] == "RS256", hdr
print(f"{sys.argv[2]}.token_bytes={len(t)}")
print(f"{sys.argv[2]}.token_header={json.dumps(hdr, separators=(',', ':'))}")
print(f"{sys.argv[2]}.token_claims={','.join(claims)}")
EOF
done
log "both servers issue RS256 access tokens; measuring"

# ---------------------------------------------------------------- 5. load
for c in $CONNS; do
  run_case gatehouse "$GH_PID" "$c" "$GH_TOKEN_URL" "$GH_BODY"
  run_case oidc-provider "$OP_PID" "$c" "$OP_TOKEN_URL" "$OP_BODY"
done

sleep "$SETTLE"
kv gh.rss_idle_after_load_kib "$(rss_kib "$GH_PID")"
kv gh.rss_peak_kib "$(hwm_kib "$GH_PID")"
kv op.rss_after_load_kib "$(rss_kib "$OP_PID")"
stop_pid "$OP_PID"
stop_pid "$GH_PID"

if [ -f "$WORK/perf-gatehouse-c16.data" ]; then
  perf report -i "$WORK/perf-gatehouse-c16.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | head -n 120 > "$WORK/perf-gatehouse-c16.txt" || true
  perf report -i "$WORK/perf-gatehouse-c16.data" --no-children --sort dso --stdio 2>/dev/null \
    | head -n 40 > "$WORK/perf-gatehouse-c16-dso.txt" || true
  rm -f "$WORK/perf-gatehouse-c16.data"
fi

# ---------------------------------------------------------------- 6. signing ceiling
# A limit, so the best attempt is kept; re-measured (up to RETRIES more times) while foreign
# load (machine busy - the signing process - softirq - steal) exceeds OTHER_MAX % of a core.
(cd "$ROOT" && cargo build -q --release -p gatehouse-jose --example sign_ceiling) >&2 || die "building sign_ceiling failed"
best_total=-1
for n in $(seq $((RETRIES + 1))); do
  quiet_gate "sign.a$n"
  log "signing ceiling (attempt $n): $NCPU thread(s) x ${SIGN_SECS}s RS256 (cargo run --release -p gatehouse-jose --example sign_ceiling)"
  read -r b0 a0 si0 st0 < <(sysv)
  (
    cd "$ROOT" && timeout $((SIGN_SECS + 300)) cargo run -q --release -p gatehouse-jose --example sign_ceiling -- "$SIGN_SECS" "$NCPU" \
      > "$WORK/sign_ceiling.a$n.txt" 2>&1 || exit 1
    read -r -a st < "/proc/$BASHPID/stat"
    echo $(( st[15] + st[16] )) > "$WORK/sign_ceiling.a$n.ticks"
  ) || die "sign_ceiling failed: $(tail -5 "$WORK/sign_ceiling.a$n.txt")"
  read -r b1 a1 si1 st1 < <(sysv)
  sign_other=$(( NCPU * 100 * ((b1 - b0) - $(cat "$WORK/sign_ceiling.a$n.ticks") - (si1 - si0) - (st1 - st0)) / ((a1 - a0) > 0 ? (a1 - a0) : 1) ))
  total=$(awk '/^SIGN_CEILING/{for(i=1;i<=NF;i++) if ($i ~ /^total=/) {sub("total=","",$i); print $i}}' "$WORK/sign_ceiling.a$n.txt")
  sed 's/^/    /' "$WORK/sign_ceiling.a$n.txt" >&2
  log "    foreign load during the attempt: ${sign_other}% of a core"
  if [ "${total:-0}" -gt "$best_total" ]; then
    best_total=${total:-0}; cp "$WORK/sign_ceiling.a$n.txt" "$WORK/sign_ceiling.txt"
    kv sign.kept_attempt "$n"; kv sign.other_pct "$sign_other"
  fi
  kv sign.attempts "$n"
  [ "$sign_other" -le "$OTHER_MAX" ] && break
done

# ---------------------------------------------------------------- 7. versions + report
{
  echo "cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)"
  echo "kernel=$(uname -r)"
  echo "mem_total_kib=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)"
  echo "git_rev=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || echo '+dirty')"
  echo "rustc=$(rustc --version)"
  echo "node=$(node --version)"
  echo "oidc_provider=$(node -p "require('$BENCH_DIR/node_modules/oidc-provider/package.json').version")"
  echo "wrk=$(wrk --version 2>&1 | head -n 1 | awk '{print $2}')"
  echo "date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >> "$KV"
REPORT_ARGS=("$WORK")
[ "${NO_RESULTS:-0}" = 1 ] || REPORT_ARGS+=("$BENCH_DIR/RESULTS.md")
python3 "$BENCH_DIR/lib/report.py" "${REPORT_ARGS[@]}"
