#!/usr/bin/env python3
"""Keeps only the listed exports of a WebAssembly module (the rest of it untouched).

Envoy (proxy-wasm-cpp-host) calls into a module only for the callbacks it
exports: for a callback that is absent it does nothing and continues. The
proxy-wasm Rust SDK exports every callback of the ABI, so each request pays
VM entries for response headers, log and done that this filter does not
use. Dropping those exports after linking removes the calls; the code stays
in the module (dead), so behaviour is unchanged.

Usage: wasm_exports.py IN OUT --keep name,name,...   (fails if one is missing)
       wasm_exports.py IN --list
"""

import argparse
import sys
from pathlib import Path

EXPORT_SECTION = 7


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the unsigned LEB128 at pos."""
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated LEB128")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 35:
            raise ValueError("LEB128 too long")


def enc_uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def sections(data: bytes):
    """(id, payload start, payload end, section start) for each section."""
    if data[:4] != b"\0asm" or data[4:8] != b"\1\0\0\0":
        raise ValueError("not a WebAssembly 1.0 module")
    pos = 8
    while pos < len(data):
        start = pos
        sid = data[pos]
        size, pos = uleb(data, pos + 1)
        if pos + size > len(data):
            raise ValueError("section runs past the end")
        yield sid, pos, pos + size, start
        pos += size


def parse_exports(payload: bytes) -> list[tuple[str, bytes]]:
    """[(name, encoded entry)] of an export section payload."""
    count, pos = uleb(payload, 0)
    out = []
    for _ in range(count):
        start = pos
        n, pos = uleb(payload, pos)
        name = payload[pos : pos + n].decode("utf-8")
        pos += n + 1  # kind
        _, pos = uleb(payload, pos)  # index
        out.append((name, payload[start:pos]))
    if pos != len(payload):
        raise ValueError("export section has trailing bytes")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--keep", default="")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    data = Path(args.input).read_bytes()
    found = [s for s in sections(data) if s[0] == EXPORT_SECTION]
    if len(found) != 1:
        print(f"{args.input}: expected one export section, found {len(found)}", file=sys.stderr)
        return 1
    _, begin, end, start = found[0]
    exports = parse_exports(data[begin:end])
    if args.list:
        print("\n".join(name for name, _ in exports))
        return 0
    keep = [k for k in args.keep.split(",") if k]
    missing = sorted(set(keep) - {name for name, _ in exports})
    if missing or not args.output:
        print(f"{args.input}: missing exports {missing}" if missing else "OUT is required", file=sys.stderr)
        return 1
    kept = [entry for name, entry in exports if name in keep]
    payload = enc_uleb(len(kept)) + b"".join(kept)
    section = bytes([EXPORT_SECTION]) + enc_uleb(len(payload)) + payload
    Path(args.output).write_bytes(data[:start] + section + data[end:])
    dropped = sorted(name for name, _ in exports if name not in keep)
    print(f"{args.output}: kept {len(kept)} exports, dropped {len(dropped)} ({', '.join(dropped)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
