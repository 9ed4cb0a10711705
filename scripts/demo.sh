#!/usr/bin/env bash
# The demo (`make demo`): echo backend + jwt-idp + Envoy running jwt-authn.wasm,
# all on 127.0.0.1, then the curl lines that show it working.
#
#   client --> Envoy :10000 --(jwt-authn.wasm)--> echo backend :8080
#                 |  JWKS
#                 +--> jwt-idp :8081  (POST /login gives tokens)
#
# It installs/builds what is missing (scripts/setup.sh, build, idp), starts the
# three processes, waits until they are ready, prints copy-pasteable curl
# lines, runs them once showing each result, then keeps running until Ctrl-C.
# Every process it started is stopped on exit. Safe to run again.
#
# Environment:
#   DEMO_ONCE=1          run the checks and exit (non-zero if any expectation fails)
#   DEMO_PORT=10000 DEMO_BACKEND_PORT=8080 DEMO_IDP_PORT=8081 DEMO_ADMIN_PORT=9901
#   DEMO_JWKS=remote     (default) Envoy fetches the JWKS from the IdP;
#            inline      the IdP's current JWKS is embedded (local_jwks)
#   DEMO_FILTER=wasm     (default) our module; native = Envoy's built-in jwt_authn
#                        with the same config, for comparison
#   DEMO_SKIP_BUILD=1    skip setup and builds (use what is in dist/ and .venv)
#   DEMO_STATE_DIR       where keys, logs and the rendered config go (.cache/demo)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

PORT="${DEMO_PORT:-10000}"
BACKEND_PORT="${DEMO_BACKEND_PORT:-8080}"
IDP_PORT="${DEMO_IDP_PORT:-8081}"
ADMIN_PORT="${DEMO_ADMIN_PORT:-9901}"
JWKS_MODE="${DEMO_JWKS:-remote}"
FILTER="${DEMO_FILTER:-wasm}"
ONCE="${DEMO_ONCE:-0}"
STATE="${DEMO_STATE_DIR:-$CACHE_DIR/demo}"
KEY_DIR="$STATE/keys"
USERS="$ROOT/demo/users.json"
IDP_BIN="$DIST_DIR/jwt-idp"
WASM="$DIST_DIR/jwt-authn.wasm"
ISSUER="http://127.0.0.1:$IDP_PORT"
AUDIENCE="demo-api"
READY_TIMEOUT=30

case "$JWKS_MODE" in remote | inline) ;; *) die "DEMO_JWKS must be remote or inline" ;; esac
case "$FILTER" in wasm | native) ;; *) die "DEMO_FILTER must be wasm or native" ;; esac
for p in "$PORT" "$BACKEND_PORT" "$IDP_PORT" "$ADMIN_PORT"; do
    if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -lt 1 ] || [ "$p" -gt 65535 ]; then die "bad port '$p'"; fi
done

# ---------------------------------------------------------------- processes
PIDS=()

# Stops the processes this run started (by pid), politely then firmly.
cleanup() {
    local pid _
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -f "$STATE"/*.pid
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A run killed with -9 cannot clean up: stop what it left, but only a process
# whose pid AND full command line match what that run recorded (so never
# anyone else's process, even if the pid was reused).
stop_leftovers() {
    local f pid recorded
    for f in "$STATE"/*.pid; do
        [ -e "$f" ] || continue
        pid="$(head -n 1 "$f")"
        recorded="$(tail -n +2 "$f")"
        if [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] &&
            [ "$(tr '\0' ' ' <"/proc/$pid/cmdline")" = "$recorded" ]; then
            say "stopping leftover $(basename "$f" .pid) (pid $pid) from an earlier run"
            kill "$pid" 2>/dev/null || true
            sleep 0.5
        fi
        rm -f "$f"
    done
}

# start NAME CMD... : runs CMD in the background, logging to $STATE/NAME.log.
start() {
    local name="$1"
    shift
    "$@" >"$STATE/$name.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    # The pid and the exact command line, for stop_leftovers.
    printf '%s\n%s \n' "$pid" "$*" >"$STATE/$name.pid"
}

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_http NAME URL EXPECT: polls URL until its body contains EXPECT (bounded).
wait_http() {
    local name="$1" url="$2" expect="$3" _
    for _ in $(seq 1 $((READY_TIMEOUT * 10))); do
        if curl -fsS --max-time 1 "$url" 2>/dev/null | grep -qF -- "$expect"; then
            return 0
        fi
        local pid
        pid="$(head -n 1 "$STATE/$name.pid" 2>/dev/null || true)"
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$STATE/$name.log" >&2 || true
            die "$name exited during startup (log: $STATE/$name.log)"
        fi
        sleep 0.1
    done
    tail -n 20 "$STATE/$name.log" >&2 || true
    die "$name not ready after ${READY_TIMEOUT}s (log: $STATE/$name.log)"
}

# ---------------------------------------------------------------- prepare
mkdir -p "$STATE"
chmod 700 "$STATE"
stop_leftovers

if [ "${DEMO_SKIP_BUILD:-0}" != 1 ]; then
    "$ROOT/scripts/setup.sh"
    "$ROOT/scripts/test.sh" build idp >"$STATE/build.log" 2>&1 || {
        tail -n 30 "$STATE/build.log" >&2
        die "build failed (log: $STATE/build.log)"
    }
fi
command -v curl >/dev/null 2>&1 || apt_install curl
if [ ! -x "$VENV/bin/python" ] || [ ! -x "$VENV/bin/envoy" ]; then die "no $VENV with envoy: run scripts/setup.sh"; fi
[ -x "$IDP_BIN" ] || die "$IDP_BIN missing: run make idp"
[ "$FILTER" = native ] || [ -f "$WASM" ] || die "$WASM missing: run make build"

for spec in "demo:$PORT:DEMO_PORT" "backend:$BACKEND_PORT:DEMO_BACKEND_PORT" \
    "idp:$IDP_PORT:DEMO_IDP_PORT" "admin:$ADMIN_PORT:DEMO_ADMIN_PORT"; do
    IFS=: read -r what port var <<<"$spec"
    port_free "$port" || die "port $port ($what) is in use: stop what uses it or set $var"
done

# ---------------------------------------------------------------- start
say "starting echo backend on 127.0.0.1:$BACKEND_PORT"
start backend "$VENV/bin/python" "$ROOT/scripts/echo_backend.py" --port "$BACKEND_PORT"

say "starting jwt-idp on $ISSUER (keys in $KEY_DIR)"
start idp "$IDP_BIN" serve --key-dir "$KEY_DIR" --users "$USERS" \
    --listen "127.0.0.1:$IDP_PORT" --issuer "$ISSUER" --audience "$AUDIENCE"
wait_http idp "$ISSUER/healthz" '"ok"'
wait_http backend "http://127.0.0.1:$BACKEND_PORT/" '"method"'

render_args=(--in "$ROOT/envoy.yaml" --out "$STATE/envoy.yaml"
    --listen-port "$PORT" --backend-port "$BACKEND_PORT" --idp-port "$IDP_PORT"
    --admin-port "$ADMIN_PORT" --wasm "$WASM" --filter "$FILTER" --jwks-mode "$JWKS_MODE")
if [ "$JWKS_MODE" = inline ]; then
    curl -fsS --max-time 5 "$ISSUER/.well-known/jwks.json" >"$STATE/jwks.json"
    render_args+=(--jwks-file "$STATE/jwks.json")
fi
"$VENV/bin/python" "$ROOT/scripts/render_demo_config.py" "${render_args[@]}"

say "starting Envoy on 127.0.0.1:$PORT (filter: $FILTER, JWKS: $JWKS_MODE, admin 127.0.0.1:$ADMIN_PORT)"
start envoy "$VENV/bin/envoy" -c "$STATE/envoy.yaml" --disable-hot-restart -l warning \
    --concurrency 1
wait_http envoy "http://127.0.0.1:$ADMIN_PORT/ready" LIVE

# ---------------------------------------------------------------- checks
ENVOY_URL="http://127.0.0.1:$PORT"
FAILURES=0
if [ -t 1 ]; then GREEN=$'\033[32m' RED=$'\033[31m' PLAIN=$'\033[0m'; else GREEN="" RED="" PLAIN=""; fi
ok() { printf '   %sok%s   %s\n' "$GREEN" "$PLAIN" "$*"; }
bad() {
    printf '   %sFAIL%s %s\n' "$RED" "$PLAIN" "$*"
    FAILURES=$((FAILURES + 1))
}

# check TITLE EXPECTED_STATUS [curl args...]: one request, status compared.
LAST_BODY=""
check() {
    local title="$1" want="$2" got
    shift 2
    rm -f "$STATE/last-body"
    got="$(curl -sS --max-time 10 -o "$STATE/last-body" -w '%{http_code}' "$@" 2>/dev/null)" || true
    got="${got:-000}"
    LAST_BODY="$(cat "$STATE/last-body" 2>/dev/null || true)"
    if [ "$got" = "$want" ]; then ok "$title -> $got"; else bad "$title -> $got (expected $want)"; fi
}

# A token the IdP never issued: same claims, signed by a key Envoy does not know.
ROGUE_DIR="$STATE/rogue-keys"
[ -f "$ROGUE_DIR/keys.json" ] || "$IDP_BIN" keygen --key-dir "$ROGUE_DIR" >/dev/null
BAD_TOKEN="$("$IDP_BIN" mint --key-dir "$ROGUE_DIR" --iss "$ISSUER" --aud "$AUDIENCE" --sub mallory --role admin)"

cat <<EOF

=== jwt-authn demo: try it yourself ===
# 1. a public path (no token needed):
curl -s $ENVOY_URL/
# 2. a protected path without a token (401):
curl -s -i $ENVOY_URL/api/hello
# 3. log in as alice (users: alice/alice-demo-pass, bob/bob-demo-pass, carol/carol-demo-pass):
TOKEN=\$(curl -s -X POST $ISSUER/login -H 'content-type: application/json' \\
  -d '{"username":"alice","password":"alice-demo-pass"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# 4. call the API with it; the backend echoes the identity headers Envoy added:
curl -s -H "Authorization: Bearer \$TOKEN" $ENVOY_URL/api/hello
# 5. a token signed by a key the IdP never published (401):
curl -s -i -H "Authorization: Bearer $BAD_TOKEN" $ENVOY_URL/api/hello
# Also: $ISSUER/.well-known/jwks.json, $ISSUER/.well-known/openid-configuration,
#       curl -X POST $ISSUER/rotate (new signing key), Envoy admin http://127.0.0.1:$ADMIN_PORT/stats
EOF

echo
say "running the checks"
check "1. GET / (public)" 200 "$ENVOY_URL/"
check "2. GET /api/hello without a token" 401 "$ENVOY_URL/api/hello"
check "3. POST /login as alice" 200 -X POST "$ISSUER/login" \
    -H 'content-type: application/json' -d '{"username":"alice","password":"alice-demo-pass"}'
TOKEN="$(printf '%s' "$LAST_BODY" | "$VENV/bin/python" -c \
    'import json,sys; print(json.load(sys.stdin).get("access_token",""))' 2>/dev/null || true)"
[ -n "$TOKEN" ] || bad "   login answered no access_token"
check "4. GET /api/hello with alice's token" 200 -H "Authorization: Bearer $TOKEN" "$ENVOY_URL/api/hello"
IDENTITY="$(printf '%s' "$LAST_BODY" | "$VENV/bin/python" -c '
import json, sys
try:
    h = json.load(sys.stdin)["headers"]
except Exception:
    sys.exit(0)
print(" ".join(f"{k}={h[k]!r}" for k in ("x-user-id", "x-user-role", "x-scope") if k in h))
' || true)"
if grep -qF "x-user-id='alice'" <<<"$IDENTITY"; then
    ok "   backend saw: $IDENTITY"
else
    bad "   backend did not see x-user-id=alice (saw: ${IDENTITY:-nothing})"
fi
check "5. GET /api/hello with a forged token" 401 -H "Authorization: Bearer $BAD_TOKEN" "$ENVOY_URL/api/hello"
check "6. POST /login with a wrong password" 401 -X POST "$ISSUER/login" \
    -H 'content-type: application/json' -d '{"username":"alice","password":"nope"}'

echo
if [ "$FAILURES" -eq 0 ]; then
    say "all demo checks passed"
else
    say "$FAILURES demo check(s) failed (logs: $STATE/*.log)"
fi

if [ "$ONCE" = 1 ]; then
    if [ "$FAILURES" -eq 0 ]; then exit 0; else exit 1; fi
fi
say "demo running; press Ctrl-C to stop (logs in $STATE)"
while true; do
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || die "a demo process (pid $pid) exited; see $STATE/*.log"
    done
    sleep 1
done
