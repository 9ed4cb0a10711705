//! `--help` texts. Kept in one place so the wording of flags, defaults and
//! exit codes stays consistent across commands (and with the README).

/// `jwt-authn --help`.
pub const MAIN: &str = "\
jwt-authn: operator tool for the jwt-authn-wasm Envoy filter. It runs the
filter's own code (config parser, token extraction, verification, decision)
natively, offline: it never goes to the network and never prints key material,
signatures or the token itself.

Usage:
  jwt-authn check-config FILE
  jwt-authn decode [--now UNIX_SECONDS] TOKEN
  jwt-authn verify --config FILE [--token TOKEN] [--path PATH] [--method M]
                   [--header 'name: value']... [--now UNIX_SECONDS]
                   [--jwks PROVIDER=FILE]...
  jwt-authn jws-verify --jwks FILE TOKEN
  jwt-authn help [COMMAND] | COMMAND --help
  jwt-authn --version

TOKEN may be - to read it from stdin.

Exit codes: 0 yes (valid / decoded / allowed), 1 no (not decodable / denied /
invalid signature), 2 usage error, unreadable input or invalid configuration.
";

/// `jwt-authn check-config --help`.
pub const CHECK_CONFIG: &str = "\
Usage: jwt-authn check-config FILE

Validates a plugin configuration with the filter's own parser and prints one
summary line per provider (issuer, key source, audiences, token locations) and
per rule (match, requirement in words).

FILE is either
  - a plugin configuration: the proto3-JSON form of Envoy's JwtAuthentication
    (what goes into the wasm filter's `configuration` StringValue), or
  - an Envoy bootstrap (YAML or JSON; recognised by a top-level
    static_resources or dynamic_resources). Every envoy.filters.http.wasm
    filter that loads this module is checked: its vm_config.code.local.filename
    (or remote.http_uri.uri) ends in jwt-authn.wasm, or its root_id or name is
    jwt_authn. typed_per_filter_config is not searched.
  - an Istio WasmPlugin (top-level kind: WasmPlugin): spec.pluginConfig is
    checked.

Errors are printed exactly as the filter logs them, `<json.path>: <message>`,
prefixed with `filter <where in the bootstrap>: ` for a bootstrap.

Exit codes: 0 valid; 2 invalid, unreadable (over 4 MiB counts as unreadable),
or a bootstrap without such a filter.
";

/// `jwt-authn decode --help`.
pub const DECODE: &str = "\
Usage: jwt-authn decode [--now UNIX_SECONDS] TOKEN

Prints a token's header and payload, pretty-printed and labelled UNVERIFIED:
nothing is checked, so do not trust what it shows. exp, nbf and iat are also
shown as UTC dates and relative to now (\"expired 3m ago\", \"expires in 2h\").
The signature is never printed, only its length.

  TOKEN               the token, or - to read it from stdin (max 64 KiB)
  --now UNIX_SECONDS  the clock for relative times (default: system time)

Exit codes: 0 decoded; 1 not decodable (not three base64url segments, header
not a JSON object, over 64 KiB); 2 usage error.
";

/// `jwt-authn verify --help`.
pub const VERIFY: &str = "\
Usage: jwt-authn verify --config FILE [--token TOKEN] [--path PATH] [--method M]
                        [--header 'name: value']... [--now UNIX_SECONDS]
                        [--jwks PROVIDER=FILE]...

Evaluates one request exactly as the filter would and prints one JSON object:
  {\"decision\": \"allow\"|\"deny\", \"status\": 200|401|403, \"reason\": CODE,
   \"provider\": NAME|null, \"headers\": {\"set\": {...}, \"removed\": [...]}}
For allow, `set` holds the headers the filter sets (claim headers, payload
header, and `:path` when a query token is removed) and `removed` the headers
it removes, in order; for deny, `set` holds `www-authenticate`.

  --config FILE         plugin configuration, Istio WasmPlugin, or a bootstrap
                        with exactly one jwt-authn filter
  --token TOKEN         the token (- reads stdin), placed where the request's
                        provider looks first: the first rule matching the
                        request, its requirement's first provider, that
                        provider's first location (header with its prefix,
                        query parameter appended to the path, or cookie);
                        `authorization: Bearer TOKEN` when no provider applies
  --path PATH           :path with query (default /)
  --method M            :method (default GET)
  --header 'n: v'       a request header (repeatable); `host` or `:authority`
                        sets :authority (default localhost); :scheme is http
  --now UNIX_SECONDS    the clock (default: system time)
  --jwks PROVIDER=FILE  keys of a remote provider, read as if fetched (same
                        size cap and RSA minimum, no HMAC keys). A remote
                        provider without --jwks is unreachable, and its tokens
                        are denied with jwks_unavailable, as in the filter when
                        fetching failed. The CLI never uses the network.

Exit codes: 0 allow; 1 deny; 2 usage error, unreadable file or invalid
configuration (message on stderr).
";

/// `jwt-authn jws-verify --help`.
pub const JWS_VERIFY: &str = "\
Usage: jwt-authn jws-verify --jwks FILE TOKEN

Checks only the JWS layer (structure, alg, key selection by kid/alg,
signature) with the filter's verifier; no claim is read. For signed payloads
that are not JWT claim sets. Prints
  {\"valid\": true|false, \"reason\": \"ok\"|CODE, \"alg\": ALG|null, \"kid\": KID|null}

  --jwks FILE   a JWKS, a single JWK, or a PEM public key; HMAC (oct) keys are
                allowed, as this is an offline tool; RSA keys under 2048 bits
                are skipped; at most 256 KiB
  TOKEN         the token, or - to read it from stdin. Tokens over 64 KiB
                (the largest extensions.max_token_bytes the filter accepts)
                are refused with reason too_large before any decoding.

Exit codes: 0 valid; 1 invalid; 2 usage error or unreadable/unparseable FILE.
";
