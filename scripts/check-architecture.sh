#!/usr/bin/env bash
# Checks the architecture invariants that the crate graph can express (see ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
forbid() { # crate, pattern of forbidden dependencies, why
  local crate=$1 pattern=$2 why=$3 found
  found=$(cargo tree -q -p "$crate" -e normal --prefix none --no-dedupe | awk '{print $1}' | sort -u | grep -E "^($pattern)$" || true)
  if [ -n "$found" ]; then
    echo "architecture: $crate must not depend on: $(echo $found) ($why)"
    fail=1
  fi
}

forbid optin-core 'tokio|mio|socket2|hyper|axum|reqwest|rusqlite|libsqlite3-sys|tokio-postgres|postgres-protocol|deadpool-postgres|async-trait|futures|tracing-subscriber' \
  "the core is pure: no I/O, no async"
forbid optin-store 'rusqlite|libsqlite3-sys|tokio-postgres|deadpool-postgres|sqlx|axum|hyper' \
  "the storage contract is driver-neutral"
forbid optin-http 'rusqlite|libsqlite3-sys|tokio-postgres|deadpool-postgres|optin-store-sqlite|optin-store-postgres' \
  "the HTTP layer knows the Store trait, never a backend"
forbid optin-http 'reqwest|optin-whatsapp' \
  "only optin-whatsapp talks to the WhatsApp upstream; the proxy reaches it through the injected Forwarder"
forbid optin-store-sqlite 'tokio-postgres|deadpool-postgres|optin-store-postgres|axum' "one backend per crate"
forbid optin-store-postgres 'rusqlite|libsqlite3-sys|optin-store-sqlite|axum' "one backend per crate"

# Every crate path ARCHITECTURE.md names must exist (a code map that names missing code is worse than none).
for path in $(grep -oE 'crates/[A-Za-z0-9_./-]+' ARCHITECTURE.md | sed 's/[.,;:]*$//' | sort -u); do
  if [ ! -e "$path" ]; then
    echo "architecture: ARCHITECTURE.md names $path, which does not exist"
    fail=1
  fi
done

[ "$fail" = 0 ] && echo "architecture: ok"
exit "$fail"
