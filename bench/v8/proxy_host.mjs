// A minimal proxy-wasm (ABI 0.2.1) host in node, to measure and profile a
// filter module's own per-request work inside V8 (the engine Envoy embeds)
// without Envoy around it: no sockets, no HTTP parsing, no machine noise from
// a second process. It is a measuring tool, not a test double: the end-to-end
// suite runs the module in a real Envoy.
//
//   node bench/v8/proxy_host.mjs --module dist/jwt-authn.wasm --config cfg.json \
//        --token-file tokens.txt [--noop dist/noop.wasm] [--requests 200000] [--rounds 7]
//
// Each request is what Envoy does for a request answered by a direct_response
// route: create an HTTP context, request headers, response headers, log,
// done, delete. With several token lines they are sent round-robin (distinct
// tokens). `verify_signature` is served with node's crypto (OpenSSL), like
// Envoy serves it with BoringSSL. Prints ns per request per module, rounds
// interleaved; `--cpu-prof` (a node flag) gives a profile by wasm function.
// `--no-liftoff` is passed by bench/v8/profile.sh: Envoy's V8 runs TurboFan only.

import fs from "node:fs";
import crypto from "node:crypto";
import { performance } from "node:perf_hooks";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith("--")) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith("--") ? all[i + 1] : "1"]);
    return acc;
  }, []),
);
const requests = Number(args.requests ?? 100000);
const rounds = Number(args.rounds ?? 5);
const tokens = args["token-file"] ? fs.readFileSync(args["token-file"], "utf8").split("\n").filter(Boolean) : [];
const config = args.config ? fs.readFileSync(args.config) : Buffer.alloc(0);
const quiet = !!args.quiet;
const jwks = args.jwks ? new Uint8Array(fs.readFileSync(args.jwks)) : null;

const VERIFY_FAILED = new TextEncoder().encode("Failed to verify digest. Error code: 0");
const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, CAS_MISMATCH = 8;
const enc = new TextEncoder();
const dec = new TextDecoder();

// Shared between the VMs of this process, as Envoy's shared data is per proxy.
const sharedData = new Map(); // key -> {value: Uint8Array, cas: number}
let casCounter = 1;
const keyObjects = new Map();

/** One VM: an instance of a module with its own host-side state. */
class Vm {
  constructor(path, configuration, name) {
    this.name = name;
    this.configuration = configuration;
    this.requestHeaders = [];
    this.metrics = [];
    this.replies = 0;
    this.lastReply = null;
    this.effective = 0;
    const module = new WebAssembly.Module(fs.readFileSync(path));
    const env = {};
    for (const imp of WebAssembly.Module.imports(module)) {
      if (imp.kind !== "function") continue;
      const impl = this.host()[imp.name];
      const target = imp.module === "env" ? env : (this.wasi ??= {});
      target[imp.name] = impl ?? (() => {
        if (!quiet) console.error(`${name}: unimplemented host call ${imp.module}.${imp.name}`);
        return BAD_ARGUMENT;
      });
    }
    this.instance = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: this.wasi ?? {} });
    this.x = this.instance.exports;
    this.x._initialize?.();
    this.x.proxy_on_context_create(1, 0);
    if (!this.x.proxy_on_vm_start(1, 0)) throw new Error(`${name}: vm start refused`);
    if (!this.x.proxy_on_configure(1, configuration.length)) throw new Error(`${name}: configuration refused`);
    this.nextId = 2;
  }

  u8() { return new Uint8Array(this.x.memory.buffer); }
  dv() { return new DataView(this.x.memory.buffer); }
  str(ptr, len) { return dec.decode(this.u8().subarray(ptr, ptr + len)); }
  bytes(ptr, len) { return this.u8().slice(ptr, ptr + len); }

  /** Copies bytes into module memory (allocated by the module) and writes the out-pointers. */
  give(bytes, outPtr, outSize) {
    const p = this.x.proxy_on_memory_allocate(bytes.length || 1);
    this.u8().set(bytes, p);
    const dv = this.dv();
    dv.setUint32(outPtr, p, true);
    dv.setUint32(outSize, bytes.length, true);
    return OK;
  }

  headerMap(type) {
    // 0 request headers, 6 a callout's response headers; others are empty here.
    if (type === 0) return this.requestHeaders;
    if (type === 6) return this.calloutHeaders ?? [];
    return [];
  }

  host() {
    const vm = this;
    return {
      proxy_log(level, ptr, len) {
        if (level >= 3 && !quiet) console.error(`${vm.name} log[${level}]: ${vm.str(ptr, len)}`);
        return OK;
      },
      proxy_get_current_time_nanoseconds(out) {
        vm.dv().setBigUint64(out, BigInt(Date.now()) * 1000000n, true);
        return OK;
      },
      proxy_set_tick_period_milliseconds() { return OK; },
      proxy_set_effective_context(id) { vm.effective = id; return OK; },
      proxy_get_buffer_bytes(type, start, max, outPtr, outSize) {
        if (type === 4 && vm.calloutBody) return vm.give(vm.calloutBody.subarray(start >>> 0, (start >>> 0) + (max >>> 0)), outPtr, outSize);
        if (type === 7 || type === 6) {
          const b = type === 7 ? vm.configuration : new Uint8Array(0);
          return vm.give(b.subarray(start >>> 0, (start >>> 0) + (max >>> 0)), outPtr, outSize);
        }
        return NOT_FOUND;
      },
      proxy_get_header_map_pairs(type, outPtr, outSize) {
        const h = vm.headerMap(type);
        let size = 4 + h.length * 8;
        for (const e of h) size += e[1].length + e[2].length + 2;
        const p = vm.x.proxy_on_memory_allocate(size);
        const mem = vm.u8();
        const dv = vm.dv();
        dv.setUint32(p, h.length, true);
        let off = p + 4;
        for (const e of h) {
          dv.setUint32(off, e[1].length, true);
          dv.setUint32(off + 4, e[2].length, true);
          off += 8;
        }
        for (const e of h) {
          mem.set(e[1], off); off += e[1].length; mem[off++] = 0;
          mem.set(e[2], off); off += e[2].length; mem[off++] = 0;
        }
        dv.setUint32(outPtr, p, true);
        dv.setUint32(outSize, size, true);
        return OK;
      },
      proxy_get_header_map_value(type, kp, kl, outPtr, outSize) {
        const k = vm.str(kp, kl);
        const e = vm.headerMap(type).find((x) => x[0] === k);
        return e ? vm.give(e[2], outPtr, outSize) : NOT_FOUND;
      },
      proxy_replace_header_map_value(type, kp, kl, vp, vl) {
        const h = vm.headerMap(type), k = vm.str(kp, kl);
        const e = [k, vm.bytes(kp, kl), vm.bytes(vp, vl)];
        const i = h.findIndex((x) => x[0] === k);
        if (i >= 0) h[i] = e; else h.push(e);
        return OK;
      },
      proxy_add_header_map_value(type, kp, kl, vp, vl) {
        vm.headerMap(type).push([vm.str(kp, kl), vm.bytes(kp, kl), vm.bytes(vp, vl)]);
        return OK;
      },
      proxy_remove_header_map_value(type, kp, kl) {
        const k = vm.str(kp, kl);
        const h = vm.headerMap(type);
        for (let i = h.length - 1; i >= 0; i--) if (h[i][0] === k) h.splice(i, 1);
        return OK;
      },
      proxy_send_local_response(status) { vm.replies++; vm.lastReply = status; return OK; },
      proxy_define_metric(_type, np, nl, out) {
        vm.metrics.push(0);
        (vm.metricNames ??= []).push(vm.str(np, nl));
        vm.dv().setUint32(out, vm.metrics.length - 1, true);
        return OK;
      },
      proxy_increment_metric(id, delta) { vm.metrics[id] += Number(delta); return OK; },
      proxy_record_metric(id, value) { vm.metrics[id] = Number(value); return OK; },
      proxy_get_shared_data(kp, kl, outPtr, outSize, casPtr) {
        const e = sharedData.get(vm.str(kp, kl));
        if (!e) return NOT_FOUND;
        vm.give(e.value, outPtr, outSize);
        vm.dv().setUint32(casPtr, e.cas, true);
        return OK;
      },
      proxy_set_shared_data(kp, kl, vp, vl, cas) {
        const k = vm.str(kp, kl);
        const e = sharedData.get(k);
        if (cas !== 0 && e && e.cas !== cas) return CAS_MISMATCH;
        sharedData.set(k, { value: vm.bytes(vp, vl), cas: casCounter++ });
        return OK;
      },
      proxy_set_property() { return OK; },
      proxy_get_property() { return NOT_FOUND; },
      proxy_http_call(_up, _ul, _hp, _hl, _bp, _bl, _tp, _tl, _timeout, tokenPtr) {
        if (!jwks) return BAD_ARGUMENT;
        const token = vm.nextCallout = (vm.nextCallout ?? 100) + 1;
        (vm.callouts ??= []).push(token);
        vm.dv().setUint32(tokenPtr, token, true);
        return OK;
      },
      proxy_call_foreign_function(np, nl, ap, al, outPtr, outSize) {
        if (vm.str(np, nl) !== "verify_signature") return NOT_FOUND;
        vm.foreignCalls = (vm.foreignCalls ?? 0) + 1;
        const a = decodeProto(vm.bytes(ap, al));
        let ok = false;
        try {
          const hash = dec.decode(a[1] ?? new Uint8Array(0));
          // Parsed once per key here (Envoy parses the DER on every call).
          const der = Buffer.from(a[2]);
          const id = der.toString("base64");
          let key = keyObjects.get(id);
          if (!key) keyObjects.set(id, (key = crypto.createPublicKey({ key: der, format: "der", type: "spki" })));
          ok = crypto.verify(hash, a[4] ?? Buffer.alloc(0), key, a[3] ?? Buffer.alloc(0));
        } catch (e) {
          if (!quiet) console.error(`verify_signature: ${e.message}`);
          ok = false;
        }
        // VerifySignatureResult { bool result = 1; string error = 2; }, with
        // Envoy's error text for a signature that does not verify.
        const answer = ok ? Uint8Array.of(0x08, 1) : Uint8Array.of(0x08, 0, 0x12, VERIFY_FAILED.length, ...VERIFY_FAILED);
        return vm.give(answer, outPtr, outSize);
      },
      random_get(ptr, len) { crypto.randomFillSync(vm.u8(), ptr, len); return 0; },
      environ_sizes_get(a, b) { const dv = vm.dv(); dv.setUint32(a, 0, true); dv.setUint32(b, 0, true); return 0; },
      environ_get() { return 0; },
      fd_write(_fd, iov, iovcnt, nwritten) {
        const dv = vm.dv();
        let n = 0;
        for (let i = 0; i < iovcnt; i++) n += dv.getUint32(iov + i * 8 + 4, true);
        dv.setUint32(nwritten, n, true);
        return 0;
      },
      proc_exit(code) { throw new Error(`${vm.name}: proc_exit(${code})`); },
    };
  }

  /** One request through the module; returns the request-headers action (0 continue, 1 pause). */
  request(headers) {
    const id = this.nextId++;
    this.requestHeaders = headers;
    this.x.proxy_on_context_create(id, 1);
    const action = this.x.proxy_on_request_headers(id, headers.length, 1);
    // As Envoy: a callback the module does not export is not called.
    this.x.proxy_on_response_headers?.(id, 0, 0);
    this.x.proxy_on_log?.(id);
    this.x.proxy_on_done?.(id);
    this.x.proxy_on_delete?.(id);
    return action;
  }

  /** A tick; then every callout the module made is answered with the JWKS document (200). */
  tick() {
    this.x.proxy_on_tick(1);
    for (const token of this.callouts?.splice(0) ?? []) {
      this.calloutHeaders = [[":status", enc.encode(":status"), enc.encode("200")]];
      this.calloutBody = jwks;
      this.x.proxy_on_http_call_response(1, token, 1, jwks.length, 0);
      this.calloutHeaders = null;
      this.calloutBody = null;
    }
  }
}

/** Length-delimited fields (wire type 2) of a flat protobuf message, by field number. */
function decodeProto(b) {
  const out = {};
  let i = 0;
  const varint = () => {
    let v = 0, s = 0;
    for (;;) {
      const c = b[i++];
      v += (c & 0x7f) * 2 ** s;
      if (c < 0x80) return v;
      s += 7;
    }
  };
  while (i < b.length) {
    const tag = varint();
    const field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 2) { const n = varint(); out[field] = b.subarray(i, i + n); i += n; }
    else if (wire === 0) varint();
    else break;
  }
  return out;
}

function headersFor(token) {
  const h = [
    [":authority", "127.0.0.1:10000"], [":path", "/"], [":method", "GET"], [":scheme", "http"],
    ["user-agent", "wrk"], ["x-forwarded-proto", "http"], ["x-request-id", crypto.randomUUID()],
  ];
  if (token) h.splice(4, 0, ["authorization", `Bearer ${token}`]);
  return h.map(([k, v]) => [k, enc.encode(k), enc.encode(v)]);
}

const vms = [];
if (args.module) vms.push(new Vm(args.module, config, "module"));
if (args.noop) vms.push(new Vm(args.noop, Buffer.alloc(0), "noop"));
if (args.module2) vms.push(new Vm(args.module2, config, "module2"));
const heads = (tokens.length ? tokens : [null]).map(headersFor);

// Correctness first: the module must allow the first request.
for (const vm of vms) {
  vm.tick();
  const action = vm.request(heads[0].slice());
  if (vm.replies) {
    console.error(`${vm.name}: the first request was answered ${vm.lastReply}, not allowed`);
    process.exit(1);
  }
  if (action !== 0) console.error(`${vm.name}: first request action ${action}`);
}

const results = Object.fromEntries(vms.map((v) => [v.name, []]));
for (let r = 0; r < rounds + 1; r++) {
  for (const vm of vms) {
    const before = vm.replies;
    const t0 = performance.now();
    for (let i = 0; i < requests; i++) {
      vm.request(heads[i % heads.length].slice());
      if (i % 2000 === 0) vm.tick(); // a 100 ms tick at 20,000 requests/s
    }
    const ns = ((performance.now() - t0) * 1e6) / requests;
    if (vm.replies !== before) {
      console.error(`${vm.name}: ${vm.replies - before} requests answered locally (denied)`);
      process.exit(1);
    }
    if (r > 0) results[vm.name].push(ns); // round 0 warms up (tier-up)
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const out = {};
for (const [name, xs] of Object.entries(results)) {
  out[name] = { median_ns: Math.round(median(xs)), min_ns: Math.round(Math.min(...xs)) };
  console.log(`${name.padEnd(8)} ${out[name].median_ns} ns/request median (min ${out[name].min_ns}) over ${rounds} x ${requests}`);
}
for (const vm of vms) {
  if (quiet) continue;
  const counters = (vm.metricNames ?? [])
    .map((n, i) => [n.replace(/^jwt_authn_wasm\./, ""), vm.metrics[i]])
    .filter(([n, v]) => v && /token_cache|signature_verifications|requests\./.test(n))
    .map(([n, v]) => `${n}=${v}`);
  console.log(`${vm.name}: verify_signature calls ${vm.foreignCalls ?? 0}; ${counters.join(" ")}`);
}
if (out.module && out.noop) console.log(`module - noop: ${out.module.median_ns - out.noop.median_ns} ns/request`);
