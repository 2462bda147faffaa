#!/usr/bin/env bash
# Runs every test: Rust unit and in-process HTTP tests, then the real-client interop
# suites (MSAL Python, azure-identity, msal-node, openid-client, Chromium) against a real
# `gatehouse serve` on loopback. Installs what the suites need first (idempotent, quick once done).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh

echo "== cargo build"
cargo build --workspace --all-targets --locked

echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee target/cargo-test.log
rust_summary=$(grep -E '^test result:' target/cargo-test.log | awk '{p+=$4; f+=$6} END {print p" passed, "f" failed"}')

echo "== interop: Python (MSAL, azure-identity, msgraph-sdk)"
.venv/bin/python -m pytest tests/interop/python -q -p no:cacheprovider

echo "== interop: Node (msal-node, openid-client, @azure/identity, Chromium)"
node tests/interop/node/run.mjs

echo "Rust: $rust_summary"
