#!/usr/bin/env bash
# Benchmark of `gatehouse doctor` (target: < 20 ms for one token + request, whole process).
#
#   bash bench/doctor.sh            # from the repository root (or anywhere)
#
# 1. builds the release binary (cargo build --release -p gatehouse);
# 2. measures the engine alone over the corpus (tests/doctor-corpus) in decisions per
#    second: the #[ignore]d test bench_engine_decisions_per_second in
#    crates/gatehouse/tests/doctor_corpus.rs, which also writes one re-signed token of the
#    corpus (case 030, app-only PATCH passwordProfile), its JWKS and the command line;
# 3. measures the whole process `gatehouse doctor <token> --request … --jwks … --json` on
#    that token with hyperfine (installed with apt-get if missing), or with a loop of 50
#    timed runs when hyperfine can't be had;
# 4. appends the figures, the exact commands and the date to bench/RESULTS.md under a
#    "## gatehouse doctor" heading (append only: the file has other authors).
#
# Env: DOCTOR_RUNS (default 50), DOCTOR_BENCH_SECONDS (engine loop, default 5),
#      DOCTOR_BENCH_CASE (corpus case used for the whole-process figure).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${DOCTOR_RUNS:-50}
export DOCTOR_BENCH_SECONDS=${DOCTOR_BENCH_SECONDS:-5}
export DOCTOR_BENCH_CASE=${DOCTOR_BENCH_CASE:-030-privileged-passwordprofile-app-no-directory-role}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "== build"
BUILD_CMD="cargo build --release -p gatehouse"
$BUILD_CMD
BIN=target/release/gatehouse

echo "== engine over the corpus"
ENGINE_CMD="cargo test --release -p gatehouse --test doctor_corpus -- --ignored --nocapture bench_engine_decisions_per_second"
DOCTOR_BENCH_OUT="$WORK" $ENGINE_CMD 2>&1 | tee "$WORK/engine.log"
ENGINE_LINE=$(grep '^DOCTOR_ENGINE ' "$WORK/engine.log" | tail -1)
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$ENGINE_LINE"; }
CASES=$(field cases); DPS=$(field decisions_per_s); USPD=$(field us_per_decision)

COLD_LINE=$(grep '^DOCTOR_COLD ' "$WORK/engine.log" | tail -1)
COLD_MS=$(sed -n 's/.* first_decision_ms=\([^ ]*\).*/\1/p' <<<"$COLD_LINE")
WARM_US=$(sed -n 's/.* second_decision_us=\([^ ]*\).*/\1/p' <<<"$COLD_LINE")

mapfile -t ARGS < "$WORK/args"
# Shell-quote one word: as is when plain, else in single quotes.
PLAIN='^[-A-Za-z0-9_./:=@%+,$]+$'
q() {
  if [[ $1 =~ $PLAIN ]]; then
    printf '%s' "$1"
  else
    local sq="'\\''"
    printf "'%s'" "${1//\'/$sq}"
  fi
}
# The command as a person would type it ($WORK = the scratch directory).
DISPLAY_CMD="target/release/gatehouse"
for a in "${ARGS[@]}"; do DISPLAY_CMD+=" $(q "${a//$WORK/\$WORK}")"; done

echo "== whole process: $DISPLAY_CMD"
"$BIN" "${ARGS[@]}" > "$WORK/report.json" || true
CAUSE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cause"])' "$WORK/report.json")
SIG=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["signature"])' "$WORK/report.json")
echo "cause $CAUSE, signature $SIG"

if ! command -v hyperfine >/dev/null 2>&1; then
  echo "== hyperfine not found: apt-get install -y hyperfine"
  (apt-get install -y hyperfine >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y hyperfine >/dev/null 2>&1; }) || true
fi

METHOD=""
if command -v hyperfine >/dev/null 2>&1; then
  METHOD="hyperfine $(hyperfine --version | awk '{print $2}'), --warmup 5 --runs $RUNS -N -i (exit status 1 = denied, expected)"
  # -N: no intermediate shell, the binary is spawned directly.
  QUOTED="$BIN"
  for a in "${ARGS[@]}"; do QUOTED+=" $(q "$a")"; done
  # For contrast: process start alone, and a token-endpoint error (no catalogue).
  hyperfine --warmup 5 --runs "$RUNS" -N -i --export-json "$WORK/h.json" "$QUOTED" \
    "$BIN --version" "$BIN doctor --token-endpoint-error 'AADSTS7000215: Invalid client secret provided.' --json"
  read -r MEAN MEDIAN SD MIN MAX VERSION_MED TEE_MED < <(python3 - "$WORK/h.json" <<'EOF'
import json, sys
rs = json.load(open(sys.argv[1]))["results"]
ms = lambda s: f"{s * 1000:.2f}"
r = rs[0]
print(ms(r["mean"]), ms(r["median"]), ms(r["stddev"]), ms(r["min"]), ms(r["max"]), ms(rs[1]["median"]), ms(rs[2]["median"]))
EOF
)
else
  METHOD="bash loop, $RUNS runs after 5 warm-up runs, each timed with date +%s%N"
  for _ in 1 2 3 4 5; do "$BIN" "${ARGS[@]}" >/dev/null || true; done
  : > "$WORK/times"
  for _ in $(seq "$RUNS"); do
    t0=$(date +%s%N); "$BIN" "${ARGS[@]}" >/dev/null || true; t1=$(date +%s%N)
    echo $(( t1 - t0 )) >> "$WORK/times"
  done
  read -r MEAN MEDIAN SD MIN MAX < <(python3 - "$WORK/times" <<'EOF'
import statistics, sys
t = [int(x) / 1e6 for x in open(sys.argv[1])]
print(*(f"{v:.2f}" for v in (statistics.mean(t), statistics.median(t), statistics.pstdev(t), min(t), max(t))))
EOF
)
  VERSION_MED="n/a"; TEE_MED="n/a"
fi
VERDICT=$(python3 -c "import sys; print('PASS' if float(sys.argv[1]) < 20 else 'FAIL')" "$MEDIAN")
echo "whole process: mean $MEAN ms, median $MEDIAN ms (sd $SD, min $MIN, max $MAX) -> $VERDICT (< 20 ms)"
echo "engine: $DPS decisions/s over $CASES cases ($USPD us/decision)"

DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
GIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo +dirty)
RUSTC=$(rustc --version)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
{
  echo
  echo "## gatehouse doctor"
  echo
  echo "Written by \`bash bench/doctor.sh\`."
  echo
  echo "* **Date (UTC):** $DATE"
  echo "* **Gatehouse:** git \`$GIT\`, \`$BUILD_CMD\`; $RUSTC"
  echo "* **Machine:** $CPU, $(nproc) cores"
  echo "* **Whole process** (spawn → JSON report → exit; RS256 signature verified against the JWKS file): $METHOD"
  echo "  \`\`\`"
  echo "  $DISPLAY_CMD"
  echo "  \`\`\`"
  echo "  (token: corpus case \`$DOCTOR_BENCH_CASE\`, claims re-signed by a test key; report: cause \`$CAUSE\`, signature \`$SIG\`)"
  echo "* **Engine alone** (\`gatehouse_engine::doctor::diagnose\` over the cases of tests/doctor-corpus, built as \`--case\` builds them, ${DOCTOR_BENCH_SECONDS} s loop, one thread):"
  echo "  \`DOCTOR_BENCH_SECONDS=$DOCTOR_BENCH_SECONDS $ENGINE_CMD\`"
  echo
  echo "| figure | value | target | verdict |"
  echo "|---|---:|---|---|"
  echo "| \`gatehouse doctor\` one token + request, median | $MEDIAN ms | < 20 ms | **$VERDICT** |"
  echo "| same, mean ± sd (min / max) | $MEAN ± $SD ms ($MIN / $MAX) | | |"
  echo "| for contrast: \`gatehouse --version\` (process start only), median | $VERSION_MED ms | | |"
  echo "| for contrast: \`gatehouse doctor --token-endpoint-error 'AADSTS7000215: …' --json\` (no catalogue), median | $TEE_MED ms | | |"
  echo "| engine decisions per second ($CASES corpus cases) | $DPS /s ($USPD µs per decision) | | |"
  echo "| engine: first Graph decision in a process (loads the embedded permission catalogue) | $COLD_MS ms (then $WARM_US µs) | | |"
} >> bench/RESULTS.md
echo "== appended to bench/RESULTS.md"
