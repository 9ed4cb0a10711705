#!/usr/bin/env python3
"""Writes the benchmark's configuration C and tokens for bench/v8/proxy_host.mjs.

Usage: inputs.py DIR [--pool N]. Writes DIR/config.json (the wasm listeners'
plugin configuration, as bench/bench.py builds it), DIR/jwks.json (the remote
provider's key set), DIR/{rs,es,ed,remote}.txt (one repeated token each) and
DIR/{rs,es,ed}_pool.txt (N distinct tokens each).
"""

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parents[1] / "tests" / "e2e")]

import bench  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--pool", type=int, default=1000)
    ap.add_argument("--jwks-port", type=int, default=9)
    args = ap.parse_args()
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg, _cached, tokens, pools, _keys = bench.build_config(args.jwks_port, args.pool)
    small = {"shared_token_cache_size": bench.SMALL_SHARED_CACHE}
    (out / "config.json").write_text(json.dumps(bench.with_extensions(cfg, **small)))
    (out / "jwks.json").write_text(tokens.pop("_remote_jwks"))
    for kind, tok in tokens.items():
        (out / f"{kind}.txt").write_text(tok + "\n")
    for kind, pool in pools.items():
        (out / f"{kind}.txt").write_text("\n".join(pool) + "\n")
    print(f"wrote {out}: config.json, jwks.json, {', '.join(sorted(tokens))} and {', '.join(sorted(pools))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
