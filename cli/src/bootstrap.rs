//! Finds this module's plugin configurations inside an Envoy bootstrap.
//!
//! A file is a *bootstrap* when its top level (JSON or YAML) has
//! `static_resources` or `dynamic_resources`; anything else is taken as a
//! plugin configuration and handed unchanged to the core's parser, so its
//! errors are exactly the filter's.
//!
//! In a bootstrap, the whole tree is searched for HTTP filters whose
//! `typed_config` is `envoy.extensions.filters.http.wasm.v3.Wasm` (directly,
//! or wrapped in a `udpa`/`xds` `TypedStruct`) and that load *this* module:
//! `config.vm_config.code.local.filename` (or `remote.http_uri.uri`) ends in
//! `jwt-authn.wasm`, or `config.root_id` or `config.name` is `jwt_authn`.
//! `typed_per_filter_config` is not searched.
//!
//! An Istio `WasmPlugin` (top-level `kind: WasmPlugin`) is accepted too: its
//! `spec.pluginConfig` is what Istio hands the module, as JSON text.

use crate::outcome::{input, CliError};
use base64::Engine as _;
use serde_json::{Map, Value};

/// Deepest nesting walked; real bootstraps are far shallower.
const MAX_DEPTH: usize = 64;
/// The module file name that identifies our filter.
const MODULE_FILE: &str = "jwt-authn.wasm";
/// The `root_id` / plugin `name` that identifies our filter.
const ROOT_ID: &str = "jwt_authn";
const WASM_TYPE: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";

/// What a configuration file turned out to be.
#[derive(Debug)]
pub enum Document {
    /// A plugin configuration: the bytes go to `Config::parse` unchanged.
    Plugin,
    /// An Envoy bootstrap and the filters of ours found in it.
    Bootstrap(Vec<FoundFilter>),
}

/// One of our wasm filters in a bootstrap.
#[derive(Debug)]
pub struct FoundFilter {
    /// Where it is: the JSON path of the filter entry, plus its plugin name.
    pub label: String,
    /// The plugin configuration bytes as Envoy would hand them to the module,
    /// or why they cannot be had.
    pub configuration: Result<Vec<u8>, String>,
    /// Something the operator should know even if the configuration is valid.
    pub warning: Option<String>,
}

/// Tells a plugin configuration from a bootstrap and extracts our filters.
pub fn classify(bytes: &[u8], file: &str) -> Result<Document, CliError> {
    let (tree, is_json) = match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => (v, true),
        Err(_) => match serde_yaml::from_slice::<Value>(bytes) {
            Ok(v) => (v, false),
            // Neither JSON nor YAML: let the core report it as a broken plugin configuration.
            Err(_) => return Ok(Document::Plugin),
        },
    };
    let Value::Object(top) = &tree else {
        return Ok(Document::Plugin);
    };
    if top.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
        return Ok(Document::Bootstrap(vec![wasm_plugin(top)]));
    }
    if !top.contains_key("static_resources") && !top.contains_key("dynamic_resources") {
        if !is_json {
            return Err(input(format!(
                "{file}: YAML that is neither an Envoy bootstrap (static_resources) nor an Istio WasmPlugin; \
                 a plugin configuration must be JSON"
            )));
        }
        return Ok(Document::Plugin);
    }
    let mut found = Vec::new();
    walk(&tree, &mut String::new(), 0, &mut found);
    if found.is_empty() {
        return Err(input(format!(
            "{file}: no envoy.filters.http.wasm filter loading {MODULE_FILE} (or with root_id/name {ROOT_ID}) in this bootstrap"
        )));
    }
    Ok(Document::Bootstrap(found))
}

/// An Istio `WasmPlugin`: Istio passes `spec.pluginConfig` to the module as JSON text.
fn wasm_plugin(top: &Map<String, Value>) -> FoundFilter {
    let ns = str_at(top, &["metadata", "namespace"]).unwrap_or("default");
    let name = str_at(top, &["metadata", "name"]).unwrap_or("");
    let configuration = match top.get("spec").and_then(|s| s.get("pluginConfig")) {
        None => Ok(Vec::new()),
        Some(v) if v.is_object() => Ok(v.to_string().into_bytes()),
        Some(_) => Err("spec.pluginConfig: must be an object".to_string()),
    };
    FoundFilter {
        label: format!("WasmPlugin {ns}/{name} spec.pluginConfig"),
        configuration,
        warning: None,
    }
}

fn walk(v: &Value, path: &mut String, depth: usize, out: &mut Vec<FoundFilter>) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::Object(map) => {
            if let Some(found) = our_filter(map, path) {
                out.push(found);
                return;
            }
            for (k, child) in map {
                if k == "typed_per_filter_config" {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(child, path, depth + 1, out);
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(child, path, depth + 1, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The wasm `PluginConfig` of an HTTP filter entry, when it is a wasm filter.
fn wasm_plugin_config(entry: &Map<String, Value>) -> Option<&Map<String, Value>> {
    let typed = entry.get("typed_config")?.as_object()?;
    let ty = typed.get("@type")?.as_str()?;
    let wasm = if ty.ends_with(WASM_TYPE) {
        typed
    } else if ty.ends_with("udpa.type.v1.TypedStruct") || ty.ends_with("xds.type.v3.TypedStruct") {
        let inner = typed.get("type_url")?.as_str()?;
        if !inner.ends_with(WASM_TYPE) {
            return None;
        }
        typed.get("value")?.as_object()?
    } else {
        return None;
    };
    wasm.get("config")?.as_object()
}

fn str_at<'a>(v: &'a Map<String, Value>, path: &[&str]) -> Option<&'a str> {
    let (last, init) = path.split_last()?;
    let mut cur = v;
    for k in init {
        cur = cur.get(*k)?.as_object()?;
    }
    cur.get(*last)?.as_str()
}

fn loads_this_module(config: &Map<String, Value>) -> bool {
    let file = str_at(config, &["vm_config", "code", "local", "filename"]);
    let uri = str_at(config, &["vm_config", "code", "remote", "http_uri", "uri"]);
    file.is_some_and(|f| f.ends_with(MODULE_FILE))
        || uri.is_some_and(|u| u.ends_with(MODULE_FILE))
        || str_at(config, &["root_id"]) == Some(ROOT_ID)
        || str_at(config, &["name"]) == Some(ROOT_ID)
}

fn our_filter(entry: &Map<String, Value>, path: &str) -> Option<FoundFilter> {
    let config = wasm_plugin_config(entry)?;
    if !loads_this_module(config) {
        return None;
    }
    let name = str_at(config, &["name"])
        .or_else(|| str_at(entry, &["name"]))
        .unwrap_or("");
    let label = if name.is_empty() {
        path.to_string()
    } else {
        format!("{path} ({name})")
    };
    let (configuration, warning) = match config.get("configuration") {
        None => (Ok(Vec::new()), None),
        Some(any) => plugin_bytes(any),
    };
    Some(FoundFilter {
        label,
        configuration,
        warning,
    })
}

/// What Envoy hands the module for a `configuration` Any (`anyToBytes`):
/// the string of a `StringValue`, the bytes of a `BytesValue`, else the
/// message's binary encoding. A `Struct` (or an object without `@type`) is an
/// error, because the filter only reads JSON text and refuses it.
fn plugin_bytes(any: &Value) -> (Result<Vec<u8>, String>, Option<String>) {
    let Some(obj) = any.as_object() else {
        return (
            Err("configuration: must be a google.protobuf.Any object with an @type".into()),
            None,
        );
    };
    let ty = obj.get("@type").and_then(Value::as_str);
    match ty {
        Some(t) if t.ends_with("google.protobuf.StringValue") => match obj.get("value") {
            None => (Ok(Vec::new()), None),
            Some(Value::String(s)) => (Ok(s.as_bytes().to_vec()), None),
            Some(_) => (Err("configuration.value: a google.protobuf.StringValue value must be a string".into()), None),
        },
        Some(t) if t.ends_with("google.protobuf.BytesValue") => match obj.get("value") {
            None => (Ok(Vec::new()), None),
            Some(Value::String(s)) => match base64::engine::general_purpose::STANDARD.decode(s.as_bytes()) {
                Ok(b) => (Ok(b), None),
                Err(_) => (Err("configuration.value: invalid base64 in google.protobuf.BytesValue".into()), None),
            },
            Some(_) => (Err("configuration.value: a google.protobuf.BytesValue value must be a base64 string".into()), None),
        },
        // Envoy hands the module a Struct's binary protobuf encoding, which the
        // filter refuses: say so here too, so check-config agrees with the filter.
        Some(t) if t.ends_with("google.protobuf.Struct") => (
            Err("configuration: a google.protobuf.Struct reaches the module as binary protobuf, which it \
                 refuses; use a google.protobuf.StringValue holding the JSON"
                .into()),
            None,
        ),
        Some(t) => (Err(format!("configuration: unsupported @type {t:?} (use google.protobuf.StringValue)")), None),
        None => (
            Err("configuration: no @type; Envoy requires a google.protobuf.StringValue holding the JSON".into()),
            None,
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn filters(yaml: &str) -> Vec<FoundFilter> {
        match classify(yaml.as_bytes(), "f").unwrap() {
            Document::Bootstrap(f) => f,
            Document::Plugin => panic!("not a bootstrap"),
        }
    }

    const HCM: &str = r#"
static_resources:
  listeners:
  - name: l
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - name: other
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config: {name: other, vm_config: {code: {local: {filename: other.wasm}}}}
          - name: envoy.filters.http.wasm
            typed_config:
              "@type": type.googleapis.com/udpa.type.v1.TypedStruct
              type_url: type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              value:
                config:
                  vm_config: {code: {local: {filename: /etc/jwt-authn.wasm}}}
                  configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "{}"}
          - name: by-root-id
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                root_id: jwt_authn
                configuration: {"@type": type.googleapis.com/google.protobuf.Struct, value: {rules: []}}
"#;

    #[test]
    fn finds_only_our_filters_anywhere_in_the_tree() {
        let f = filters(HCM);
        assert_eq!(f.len(), 2);
        assert_eq!(
            f[0].label,
            "static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters[1] (envoy.filters.http.wasm)"
        );
        assert_eq!(f[0].configuration.as_deref().unwrap(), b"{}");
        assert!(f[0].warning.is_none());
        assert!(f[1]
            .configuration
            .as_ref()
            .unwrap_err()
            .contains("google.protobuf.Struct"));
    }

    #[test]
    fn plugin_configs_and_garbage_go_to_the_core_parser() {
        assert!(matches!(
            classify(br#"{"providers": {}}"#, "f").unwrap(),
            Document::Plugin
        ));
        assert!(matches!(
            classify(b"{not json", "f").unwrap(),
            Document::Plugin
        ));
        assert!(matches!(classify(b"", "f").unwrap(), Document::Plugin));
    }

    #[test]
    fn istio_wasm_plugins_are_checked_and_other_yaml_is_refused() {
        let f = filters("kind: WasmPlugin\nmetadata: {name: j, namespace: demo}\nspec:\n  pluginConfig: {rules: []}\n");
        assert_eq!(f[0].label, "WasmPlugin demo/j spec.pluginConfig");
        assert_eq!(f[0].configuration.as_deref().unwrap(), br#"{"rules":[]}"#);
        let e = classify(b"providers: {}\n", "p.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be JSON"), "{e}");
    }

    #[test]
    fn a_bootstrap_without_our_filter_is_an_error() {
        let e = classify(b"static_resources: {listeners: []}", "envoy.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("envoy.yaml: no envoy.filters.http.wasm filter"),
            "{e}"
        );
    }

    #[test]
    fn configuration_any_forms() {
        let (b, w) = plugin_bytes(
            &serde_json::json!({"@type": "type.googleapis.com/google.protobuf.BytesValue", "value": "e30="}),
        );
        assert_eq!((b.unwrap(), w), (b"{}".to_vec(), None));
        let (b, _) = plugin_bytes(&serde_json::json!({"@type": "type.googleapis.com/foo.Bar"}));
        assert!(b.unwrap_err().contains("unsupported @type"));
        let (b, _) = plugin_bytes(&serde_json::json!("x"));
        assert!(b.is_err());
    }
}
