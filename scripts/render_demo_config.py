#!/usr/bin/env python3
"""Renders the demo Envoy config (top-level envoy.yaml) for one demo run.

envoy.yaml is written for the default ports (listener 10000, backend 8080,
IdP 8081, admin 9901) and a module path relative to the repository root.
scripts/demo.sh lets every port be overridden, so this script rewrites:

  * the listener, admin, `backend` and `idp` cluster ports;
  * the provider issuer and JWKS URI (they name the IdP's address);
  * the module path (made absolute, so Envoy can run from any directory);
  * with --jwks-mode inline: each provider gets `local_jwks.inline_string`
    holding the IdP's current JWKS instead of `remote_jwks` (the mode that
    works before the module supports remote JWKS fetching);
  * with --filter native: the wasm filter is swapped for Envoy's built-in
    envoy.filters.http.jwt_authn with the very same configuration (the
    reference behaviour, handy to compare the demo against).

Needs PyYAML (installed in .venv by scripts/setup.sh). Also importable: the
deployment tests use plugin_config() and render().
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import yaml

WASM_FILTER = "envoy.filters.http.wasm"
NATIVE_FILTER = "envoy.filters.http.jwt_authn"
JWT_AUTHN_TYPE = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"
DEFAULT_IDP = "127.0.0.1:8081"


def http_filters(doc: dict) -> list[dict]:
    """Every HTTP filter list in the bootstrap's static listeners."""
    lists = []
    for listener in doc.get("static_resources", {}).get("listeners", []):
        for chain in listener.get("filter_chains", []):
            for net_filter in chain.get("filters", []):
                hcm = net_filter.get("typed_config", {})
                if "http_filters" in hcm:
                    lists.append(hcm["http_filters"])
    return lists


def wasm_filter(doc: dict) -> dict:
    """The (single) jwt-authn wasm filter entry."""
    found = [f for fl in http_filters(doc) for f in fl if f.get("name") == WASM_FILTER]
    if len(found) != 1:
        raise ValueError(f"expected exactly one {WASM_FILTER} filter, found {len(found)}")
    return found[0]


def plugin_config(doc: dict) -> dict:
    """The plugin configuration (JwtAuthentication proto3-JSON) of the wasm filter."""
    value = wasm_filter(doc)["typed_config"]["config"]["configuration"]["value"]
    return json.loads(value)


def _set_plugin_config(doc: dict, config: dict) -> None:
    configuration = wasm_filter(doc)["typed_config"]["config"]["configuration"]
    configuration["value"] = json.dumps(config, indent=2) + "\n"


def _set_cluster_port(doc: dict, name: str, port: int) -> None:
    for cluster in doc["static_resources"]["clusters"]:
        if cluster["name"] == name:
            for group in cluster["load_assignment"]["endpoints"]:
                for endpoint in group["lb_endpoints"]:
                    endpoint["endpoint"]["address"]["socket_address"]["port_value"] = port
            return
    raise ValueError(f"no cluster named {name!r}")


def render(
    doc: dict,
    *,
    listen_port: int | None = None,
    backend_port: int | None = None,
    idp_port: int | None = None,
    admin_port: int | None = None,
    wasm_path: str | None = None,
    jwks_mode: str = "remote",
    jwks_text: str | None = None,
    filter_kind: str = "wasm",
) -> dict:
    """Returns a rewritten copy of the demo bootstrap `doc` (see module doc)."""
    doc = copy.deepcopy(doc)
    if listen_port is not None:
        for listener in doc["static_resources"]["listeners"]:
            listener["address"]["socket_address"]["port_value"] = listen_port
    if admin_port is not None:
        doc["admin"]["address"]["socket_address"]["port_value"] = admin_port
    if backend_port is not None:
        _set_cluster_port(doc, "backend", backend_port)
    if idp_port is not None:
        _set_cluster_port(doc, "idp", idp_port)
    if wasm_path is not None:
        code = wasm_filter(doc)["typed_config"]["config"]["vm_config"]["code"]
        code["local"]["filename"] = str(Path(wasm_path).resolve())

    config = plugin_config(doc)
    idp_addr = f"127.0.0.1:{idp_port}" if idp_port is not None else DEFAULT_IDP
    for provider in config.get("providers", {}).values():
        if "issuer" in provider:
            provider["issuer"] = provider["issuer"].replace(DEFAULT_IDP, idp_addr)
        remote = provider.get("remote_jwks")
        if remote is not None:
            remote["http_uri"]["uri"] = remote["http_uri"]["uri"].replace(DEFAULT_IDP, idp_addr)
        if jwks_mode == "inline":
            if jwks_text is None:
                raise ValueError("inline JWKS mode needs the JWKS text")
            json.loads(jwks_text)  # refuse to embed something that is not JSON
            provider.pop("remote_jwks", None)
            provider["local_jwks"] = {"inline_string": jwks_text}
        elif jwks_mode != "remote":
            raise ValueError(f"unknown JWKS mode {jwks_mode!r} (remote or inline)")
    _set_plugin_config(doc, config)

    if filter_kind == "native":
        for filters in http_filters(doc):
            for i, entry in enumerate(filters):
                if entry.get("name") == WASM_FILTER:
                    filters[i] = {
                        "name": NATIVE_FILTER,
                        "typed_config": {"@type": JWT_AUTHN_TYPE, **config},
                    }
    elif filter_kind != "wasm":
        raise ValueError(f"unknown filter {filter_kind!r} (wasm or native)")
    return doc


class _LiteralDumper(yaml.SafeDumper):
    """Writes multi-line strings (the plugin JSON) as readable `|` blocks."""


def _str_representer(dumper: yaml.SafeDumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_LiteralDumper.add_representer(str, _str_representer)


def dump(doc: dict) -> str:
    """YAML text of a bootstrap, with the plugin JSON kept readable."""
    return yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, width=1000)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="src", default="envoy.yaml", help="demo bootstrap (default envoy.yaml)")
    parser.add_argument("--out", required=True, help="where to write the rendered bootstrap")
    parser.add_argument("--listen-port", type=int)
    parser.add_argument("--backend-port", type=int)
    parser.add_argument("--idp-port", type=int)
    parser.add_argument("--admin-port", type=int)
    parser.add_argument("--wasm", help="path of jwt-authn.wasm (made absolute)")
    parser.add_argument("--jwks-mode", choices=["remote", "inline"], default="remote")
    parser.add_argument("--jwks-file", help="JWKS JSON for --jwks-mode inline (e.g. from `jwt-idp jwks`)")
    parser.add_argument("--filter", choices=["wasm", "native"], default="wasm")
    args = parser.parse_args(argv)

    if args.jwks_mode == "inline" and not args.jwks_file:
        parser.error("--jwks-mode inline needs --jwks-file")
    jwks_text = Path(args.jwks_file).read_text() if args.jwks_file else None
    doc = yaml.safe_load(Path(args.src).read_text())
    try:
        rendered = render(
            doc,
            listen_port=args.listen_port,
            backend_port=args.backend_port,
            idp_port=args.idp_port,
            admin_port=args.admin_port,
            wasm_path=args.wasm,
            jwks_mode=args.jwks_mode,
            jwks_text=jwks_text,
            filter_kind=args.filter,
        )
    except (KeyError, ValueError) as err:
        print(f"render_demo_config: {err}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(rendered))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
