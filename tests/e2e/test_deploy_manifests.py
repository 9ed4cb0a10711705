"""Static checks of the deployment files: docker-compose.yml and compose/,
the demo envoy.yaml, and the Istio manifests in istio/.

Containers and Kubernetes cannot run here, so each file is checked as far as
possible without them: the compose file against the compose-spec JSON Schema
and against the repository (everything it mounts or builds exists), the Envoy
configs with the real Envoy 1.40 in --mode validate, the Istio manifests
against their CRDs' storage-version openAPIV3Schema (plus the CEL rules a
plain validator skips, where they matter), and the plugin configuration of
every deployment against the demo's, modulo documented address differences.
Schemas and their provenance: testdata/schemas/ (SOURCES.md).
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.util
import json
import os
import re
import select
import subprocess
import sys
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness import default_wasm_path, envoy_validate

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "testdata" / "schemas"
COMPOSE_FILE = REPO / "docker-compose.yml"
DEMO_ENVOY = REPO / "envoy.yaml"
COMPOSE_ENVOY = REPO / "compose" / "envoy.yaml"
ISTIO = REPO / "istio"
WASMPLUGIN = ISTIO / "wasmplugin.yaml"
# Where each Envoy config expects the module (replaced by the built module
# before validating, since Envoy's validate mode opens the file).
MODULE_PATHS = {DEMO_ENVOY: "dist/jwt-authn.wasm", COMPOSE_ENVOY: "/etc/envoy/jwt-authn.wasm"}

# The only ways a deployment's plugin config may differ from envoy.yaml's:
# where the IdP is reached from that deployment. Everything else (providers,
# audiences, claim_to_headers, rules, timeouts, cache duration) must be equal.
DEMO_IDP = {
    "issuer": "http://127.0.0.1:8081",
    "uri": "http://127.0.0.1:8081/.well-known/jwks.json",
    "cluster": "idp",
}
HOST_DIFFERENCES = {
    "compose/envoy.yaml": {
        "issuer": "http://idp:8081",
        "uri": "http://idp:8081/.well-known/jwks.json",
        "cluster": "idp",
    },
    "istio/wasmplugin.yaml": {
        "issuer": "http://idp.demo.svc.cluster.local:8081",
        "uri": "http://idp.demo.svc.cluster.local:8081/.well-known/jwks.json",
        "cluster": "outbound|8081||idp.demo.svc.cluster.local",
    },
}

# manifest -> CRD file it must validate against
ISTIO_MANIFESTS = {
    "wasmplugin.yaml": "wasmplugin.crd.yaml",
    "serviceentry.yaml": "serviceentry.crd.yaml",
    "destinationrule.yaml": "destinationrule.crd.yaml",
    "authorizationpolicy.yaml": "authorizationpolicy.crd.yaml",
}

SAMPLE_JWKS = json.dumps(
    {
        "keys": [
            {
                "kty": "EC",
                "crv": "P-256",
                "kid": "sample",
                "alg": "ES256",
                "use": "sig",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
            }
        ]
    }
)


def _load_render_module():
    path = REPO / "scripts" / "render_demo_config.py"
    spec = importlib.util.spec_from_file_location("render_demo_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_demo_config = _load_render_module()


def _yaml(path: Path):
    return yaml.safe_load(path.read_text())


def plugin_configs() -> dict[str, dict]:
    """Every plugin configuration shipped in the repository, as dicts, by file.

    For feeding them to the module's own config parser (`jwt-authn
    check-config`): keys are repository-relative paths, values the parsed
    proto3-JSON JwtAuthentication config exactly as that deployment passes it.
    """
    return {
        "envoy.yaml": render_demo_config.plugin_config(_yaml(DEMO_ENVOY)),
        "compose/envoy.yaml": render_demo_config.plugin_config(_yaml(COMPOSE_ENVOY)),
        "istio/wasmplugin.yaml": _yaml(WASMPLUGIN)["spec"]["pluginConfig"],
    }


def _normalise_hosts(config: dict, actual: dict, target: dict) -> dict:
    """Replaces the documented per-deployment IdP addresses with the demo's.

    Fails if a provider's address is not the documented one, so an
    undocumented difference cannot hide behind the normalisation.
    """
    config = copy.deepcopy(config)
    for name, provider in config["providers"].items():
        assert provider["issuer"] == actual["issuer"], f"{name}: issuer"
        provider["issuer"] = target["issuer"]
        http_uri = provider["remote_jwks"]["http_uri"]
        assert http_uri["uri"] == actual["uri"], f"{name}: jwks uri"
        assert http_uri["cluster"] == actual["cluster"], f"{name}: jwks cluster"
        http_uri["uri"] = target["uri"]
        http_uri["cluster"] = target["cluster"]
    return config


def _built_module() -> Path:
    module = default_wasm_path()
    if not module.is_file():
        pytest.fail(f"{module} is missing: run `make build` first", pytrace=False)
    return module


def _validate_envoy_config(text: str, tmp_path: Path, name: str) -> tuple[bool, str]:
    path = tmp_path / name
    path.write_text(text)
    return envoy_validate(path)


def _with_built_module(config_file: Path) -> str:
    """The config text with its module path pointing at the built module."""
    text = config_file.read_text()
    expected = MODULE_PATHS[config_file]
    assert f"filename: {expected}" in text, f"{config_file.name} no longer loads {expected}"
    return text.replace(f"filename: {expected}", f"filename: {_built_module()}")


# ----------------------------------------------------------------- compose


def test_compose_file_validates_against_the_compose_schema():
    schema = json.loads((SCHEMAS / "compose" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(_yaml(COMPOSE_FILE)), key=lambda e: e.path)
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_compose_schema_check_can_fail():
    """The validator really rejects a broken service (guards the test above)."""
    schema = json.loads((SCHEMAS / "compose" / "compose-spec.json").read_text())
    broken = _yaml(COMPOSE_FILE)
    broken["services"]["envoy"]["imagee"] = "typo"
    assert list(jsonschema.Draft7Validator(schema).iter_errors(broken))


def _dockerignore_allows(rules: list[str], rel: str) -> bool:
    """Minimal .dockerignore matcher: last matching rule wins; '!' re-includes.

    Enough for the simple rules used here (`*`, `!dir/`, `!file`): a rule
    matches a path or any of its parent directories.
    """
    parts = rel.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    allowed = True
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.strip("/")
        if any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            allowed = negate
    return allowed


def _dockerfile_copies(dockerfile: Path) -> list[str]:
    """Sources of the COPY instructions that read from the build context."""
    text = dockerfile.read_text().replace("\\\n", " ")
    sources = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() != "COPY":
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        sources.extend(args[:-1])
    return sources


def _check_build(context: Path, dockerfile: Path) -> list[str]:
    problems = []
    if not dockerfile.is_file():
        return [f"dockerfile {dockerfile} missing"]
    ignore_file = dockerfile.with_name(dockerfile.name + ".dockerignore")
    rules = []
    if ignore_file.exists():
        rules = [l.strip() for l in ignore_file.read_text().splitlines() if l.strip() and not l.startswith("#")]
    for source in _dockerfile_copies(dockerfile):
        rel = source[2:] if source.startswith("./") else source
        if source.startswith("dist/"):
            problems += _check_dist_artifact(source)
        elif not (context / source).exists():
            problems.append(f"{dockerfile.name}: COPY source {source} does not exist")
        if rules and not _dockerignore_allows(rules, rel):
            problems.append(f"{dockerfile.name}: COPY source {source} is excluded by {ignore_file.name}")
    return problems


def _check_dist_artifact(rel: str) -> list[str]:
    """dist/ holds build outputs: the Makefile must have the target that makes them."""
    makefile = (REPO / "Makefile").read_text()
    producers = {
        "dist/jwt-authn.wasm": ("build", REPO / "scripts" / "build-wasm.sh", "jwt-authn.wasm"),
        "dist/jwt-idp": ("idp", REPO / "scripts" / "test.sh", "jwt-idp"),
    }
    if rel not in producers:
        return [f"{rel}: no known make target builds it"]
    target, script, name = producers[rel]
    problems = []
    if not re.search(rf"^{target}:", makefile, re.M):
        problems.append(f"{rel}: Makefile has no `{target}` target")
    if not script.exists() or name not in script.read_text():
        problems.append(f"{rel}: {script.name} does not produce {name}")
    return problems


def test_compose_builds_and_mounts_only_files_that_exist():
    doc = _yaml(COMPOSE_FILE)
    problems = []
    for name, service in doc["services"].items():
        build = service.get("build")
        if build is not None:
            context = REPO / (build if isinstance(build, str) else build.get("context", "."))
            dockerfile = context / (build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile")
            problems += [f"{name}: {p}" for p in _check_build(context, dockerfile)]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if not source.startswith((".", "/")):
                assert source in doc.get("volumes", {}), f"{name}: named volume {source} not declared"
                continue
            rel = os.path.normpath(source)
            if rel.startswith("dist/"):
                problems += [f"{name}: {p}" for p in _check_dist_artifact(rel)]
            elif not (REPO / rel).exists():
                problems.append(f"{name}: mounted {source} does not exist")
    assert not problems, "\n".join(problems)


def test_compose_publishes_only_on_loopback_and_pins_images():
    doc = _yaml(COMPOSE_FILE)
    for name, service in doc["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        image = service.get("image", "")
        assert not image.endswith(":latest") and (":" in image or "build" in service), f"{name}: unpinned {image}"
    assert doc["services"]["envoy"]["image"] == "envoyproxy/envoy:v1.40.0"
    envoy_mounts = {v.split(":")[1]: v.split(":")[0] for v in doc["services"]["envoy"]["volumes"]}
    assert envoy_mounts["/etc/envoy/jwt-authn.wasm"] == "./dist/jwt-authn.wasm"
    assert envoy_mounts["/etc/envoy/envoy.yaml"] == "./compose/envoy.yaml"
    assert "/etc/envoy/envoy.yaml" in doc["services"]["envoy"]["command"]


def test_compose_envoy_reaches_services_by_name_with_strict_dns():
    clusters = {c["name"]: c for c in _yaml(COMPOSE_ENVOY)["static_resources"]["clusters"]}
    services = _yaml(COMPOSE_FILE)["services"]
    for name, port in (("idp", 8081), ("backend", 8080)):
        cluster = clusters[name]
        assert cluster["type"] == "STRICT_DNS"
        address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
        assert address["socket_address"] == {"address": name, "port_value": port}
        assert name in services
    idp_command = services["idp"]["command"]
    assert idp_command[idp_command.index("--issuer") + 1] == "http://idp:8081"


def test_compose_backend_command_serves_the_echo_handler():
    """The backend service's command, run here with the host swapped for
    loopback (in the container it binds 0.0.0.0)."""
    services = _yaml(REPO / "docker-compose.yml")["services"]
    command = list(services["backend"]["command"])
    assert command[:2] == ["python3", "/app/echo_backend.py"]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = "0"
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "echo_backend.py"), *command[2:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 10)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("LISTENING "), line
        port = int(line.split()[1])
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/x", headers={"x-probe": "1"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            body = json.loads(resp.read())
        assert body["path"] == "/api/x"
        assert body["headers"]["x-probe"] == "1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


# ----------------------------------------------------------------- envoy


@pytest.mark.parametrize("config_file", [DEMO_ENVOY, COMPOSE_ENVOY], ids=["envoy.yaml", "compose/envoy.yaml"])
def test_envoy_config_passes_envoy_validate(config_file, tmp_path):
    ok, output = _validate_envoy_config(_with_built_module(config_file), tmp_path, "envoy.yaml")
    assert ok, output


def test_envoy_validate_catches_a_broken_config(tmp_path):
    """Guards the test above: validate mode does reject a wrong config."""
    text = _with_built_module(DEMO_ENVOY).replace("route: {cluster: backend}", "route: {cluster: nowhere}")
    ok, output = _validate_envoy_config(text, tmp_path, "broken.yaml")
    assert not ok
    assert "nowhere" in output


@pytest.mark.parametrize("filter_kind", ["wasm", "native"])
@pytest.mark.parametrize("jwks_mode", ["remote", "inline"])
def test_rendered_demo_configs_pass_envoy_validate(filter_kind, jwks_mode, tmp_path):
    rendered = render_demo_config.render(
        _yaml(DEMO_ENVOY),
        listen_port=20000,
        backend_port=20080,
        idp_port=20081,
        admin_port=20901,
        wasm_path=str(_built_module()),
        jwks_mode=jwks_mode,
        jwks_text=SAMPLE_JWKS if jwks_mode == "inline" else None,
        filter_kind=filter_kind,
    )
    text = render_demo_config.dump(rendered)
    ok, output = _validate_envoy_config(text, tmp_path, "rendered.yaml")
    assert ok, output
    doc = yaml.safe_load(text)
    filters = render_demo_config.http_filters(doc)[0]
    if filter_kind == "wasm":
        config = render_demo_config.plugin_config(doc)
    else:
        assert filters[0]["name"] == "envoy.filters.http.jwt_authn"
        config = {k: v for k, v in filters[0]["typed_config"].items() if k != "@type"}
    provider = config["providers"]["demo_idp"]
    assert provider["issuer"] == "http://127.0.0.1:20081"
    if jwks_mode == "inline":
        assert "remote_jwks" not in provider
        assert json.loads(provider["local_jwks"]["inline_string"]) == json.loads(SAMPLE_JWKS)
    else:
        assert provider["remote_jwks"]["http_uri"]["uri"] == "http://127.0.0.1:20081/.well-known/jwks.json"
    # Apart from the addresses and the JWKS source, the config is the demo's.
    original = render_demo_config.plugin_config(_yaml(DEMO_ENVOY))
    provider.pop("local_jwks", None)
    provider["remote_jwks"] = original["providers"]["demo_idp"]["remote_jwks"]
    provider["issuer"] = original["providers"]["demo_idp"]["issuer"]
    assert config == original


def test_render_refuses_inline_mode_without_a_jwks():
    with pytest.raises(ValueError):
        render_demo_config.render(_yaml(DEMO_ENVOY), jwks_mode="inline")
    with pytest.raises(ValueError):
        render_demo_config.render(_yaml(DEMO_ENVOY), jwks_mode="inline", jwks_text="not json")


# ----------------------------------------------------------------- istio


def _storage_schema(crd_file: str) -> tuple[dict, dict]:
    crd = _yaml(SCHEMAS / "istio" / crd_file)
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return crd, version


@pytest.mark.parametrize("manifest", sorted(ISTIO_MANIFESTS))
def test_istio_manifest_validates_against_its_crd(manifest):
    crd, version = _storage_schema(ISTIO_MANIFESTS[manifest])
    doc = _yaml(ISTIO / manifest)
    assert doc["apiVersion"] == f"{crd['spec']['group']}/{version['name']}"
    assert doc["kind"] == crd["spec"]["names"]["kind"]
    assert doc["metadata"]["name"] and doc["metadata"]["namespace"] == "demo"
    schema = version["schema"]["openAPIV3Schema"]
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(doc))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_istio_crd_check_can_fail():
    """Guards the test above: a wrong enum value is rejected."""
    _, version = _storage_schema("wasmplugin.crd.yaml")
    broken = _yaml(WASMPLUGIN)
    broken["spec"]["phase"] = "AUTHENTICATE"
    assert list(jsonschema.Draft7Validator(version["schema"]["openAPIV3Schema"]).iter_errors(broken))


def test_wasmplugin_fails_closed_in_the_authn_phase():
    spec = _yaml(WASMPLUGIN)["spec"]
    assert spec["phase"] == "AUTHN"
    assert spec["failStrategy"] == "FAIL_CLOSE"
    assert spec["type"] == "HTTP"
    assert spec["url"].startswith("oci://")
    # CEL rules of the CRD that a plain JSON Schema validator does not run:
    selectors = [k for k in ("selector", "targetRef", "targetRefs") if k in spec]
    assert len(selectors) <= 1, "only one of targetRefs or selector can be set"
    assert spec["url"].split("://", 1)[0] in ("http", "https", "oci", "file")


def test_istio_dockerfile_packages_the_module_as_plugin_wasm():
    lines = [l.strip() for l in (ISTIO / "Dockerfile").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines == ["FROM scratch", "COPY dist/jwt-authn.wasm ./plugin.wasm"]
    assert not _check_build(REPO, ISTIO / "Dockerfile")


def test_jwks_callout_host_matches_serviceentry_and_destinationrule():
    cluster = HOST_DIFFERENCES["istio/wasmplugin.yaml"]["cluster"]
    direction, port, subset, host = cluster.split("|")
    assert (direction, subset) == ("outbound", "")
    entry = _yaml(ISTIO / "serviceentry.yaml")["spec"]
    assert host in entry["hosts"]
    assert int(port) in [p["number"] for p in entry["ports"]]
    assert _yaml(ISTIO / "destinationrule.yaml")["spec"]["host"] == host
    issuer = HOST_DIFFERENCES["istio/wasmplugin.yaml"]["issuer"]
    assert issuer == f"http://{host}:{port}"


def test_authorization_policy_uses_headers_the_plugin_injects():
    policy = _yaml(ISTIO / "authorizationpolicy.yaml")["spec"]
    injected = {
        h["header_name"]
        for p in _yaml(WASMPLUGIN)["spec"]["pluginConfig"]["providers"].values()
        for h in p.get("claim_to_headers", [])
    }
    keys = [c["key"] for rule in policy["rules"] for c in rule.get("when", [])]
    assert keys, "the example should authorize on an injected header"
    for key in keys:
        match = re.fullmatch(r"request\.headers\[([a-z0-9-]+)\]", key)
        assert match and match.group(1) in injected, key
    assert policy["selector"] == _yaml(WASMPLUGIN)["spec"]["selector"]


# ----------------------------------------------------------------- plugin configs


def test_every_deployment_uses_the_demo_plugin_config_modulo_idp_address():
    configs = plugin_configs()
    demo = configs.pop("envoy.yaml")
    assert demo["providers"]["demo_idp"]["issuer"] == DEMO_IDP["issuer"]
    assert set(configs) == set(HOST_DIFFERENCES)
    for name, config in configs.items():
        normalised = _normalise_hosts(config, HOST_DIFFERENCES[name], DEMO_IDP)
        assert normalised == demo, f"{name} differs from envoy.yaml beyond the IdP address"


def test_plugin_config_comparison_can_fail():
    """Guards the test above: any other difference is caught."""
    configs = plugin_configs()
    changed = copy.deepcopy(configs["istio/wasmplugin.yaml"])
    changed["providers"]["demo_idp"]["audiences"] = ["other"]
    normalised = _normalise_hosts(changed, HOST_DIFFERENCES["istio/wasmplugin.yaml"], DEMO_IDP)
    assert normalised != configs["envoy.yaml"]


def test_plugin_configs_are_json_serialisable_dicts():
    for name, config in plugin_configs().items():
        assert isinstance(config, dict), name
        assert json.loads(json.dumps(config)) == config, name
        assert set(config) == {"providers", "rules"}, name


# --------------------------------------------------------------------------
# The module's own config parser accepts every shipped plugin configuration
# (through the CLI, which runs the filter's parser natively).

CLI_BIN = Path(os.environ.get("DIST_DIR", REPO / "dist")) / "jwt-authn"


@pytest.mark.parametrize("name", sorted(plugin_configs()))
def test_shipped_plugin_configs_pass_the_modules_parser(tmp_path, name):
    assert CLI_BIN.exists(), f"{CLI_BIN} missing: run `make cli`"
    cfg = tmp_path / "plugin.json"
    cfg.write_text(json.dumps(plugin_configs()[name]))
    p = subprocess.run([str(CLI_BIN), "check-config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("configuration ok:"), p.stdout


@pytest.mark.parametrize("rel", ["envoy.yaml", "compose/envoy.yaml", "istio/wasmplugin.yaml", "examples/rbac/envoy.yaml"])
def test_shipped_files_pass_check_config(rel):
    assert CLI_BIN.exists(), f"{CLI_BIN} missing: run `make cli`"
    p = subprocess.run([str(CLI_BIN), "check-config", str(REPO / rel)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "configuration ok" in p.stdout


def test_check_config_rejects_a_broken_copy(tmp_path):
    doc = plugin_configs()["envoy.yaml"]
    doc["providers"]["demo_idp"]["remote_jwks"]["http_uri"]["timeout"] = "5 s"
    cfg = tmp_path / "plugin.json"
    cfg.write_text(json.dumps(doc))
    p = subprocess.run([str(CLI_BIN), "check-config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert 'providers.demo_idp.remote_jwks.http_uri.timeout: invalid duration "5 s"' in p.stderr
