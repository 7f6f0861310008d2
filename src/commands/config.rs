//! `lab validate` and `lab config`.

use std::path::Path;

use anyhow::Context;
use serde_json::{Map, Value};

use crate::error::Result;

pub fn validate(file: &Path) -> Result<()> {
    let lab = super::load(file)?;
    println!(
        "{}: lab `{}` is valid: {} services, {} nodes on {}",
        file.display(),
        lab.name(),
        lab.services().len(),
        lab.nodes().len(),
        lab.network().subnet
    );
    Ok(())
}

/// JSON: the model as it is (services and nodes as arrays of objects with a `name`).
/// TOML: the same, shaped like the lab file (`[services.NAME]`, `[nodes.NAME]`, ports as
/// `"HOST:CONTAINER/PROTO"`), so the expanded lab reads like a lab file without counts.
pub fn config(file: &Path, json: bool) -> Result<()> {
    let lab = super::load(file)?;
    let value = serde_json::to_value(&lab).context("printing the lab")?;
    let text = if json {
        serde_json::to_string_pretty(&value).context("printing the lab as JSON")?
    } else {
        toml::to_string(&file_shaped(value)).context("printing the lab as TOML")?
    };
    println!("{}", text.trim_end());
    Ok(())
}

fn file_shaped(value: Value) -> Value {
    let Value::Object(mut top) = value else {
        return value;
    };
    let mut out = Map::new();
    let mut head = Map::new();
    for key in ["name", "publish", "base_image"] {
        if let Some(v) = top.remove(key) {
            head.insert(key.into(), v);
        }
    }
    out.insert("lab".into(), Value::Object(head));
    for (key, v) in top {
        let v = match (key.as_str(), v) {
            ("services" | "nodes", Value::Array(items)) => keyed_by_name(items),
            (_, v) => v,
        };
        out.insert(key, v);
    }
    prune(Value::Object(out))
}

fn keyed_by_name(items: Vec<Value>) -> Value {
    let mut map = Map::new();
    for item in items {
        if let Value::Object(mut o) = item {
            let name = o
                .remove("name")
                .and_then(|n| n.as_str().map(str::to_string))
                .unwrap_or_default();
            if let Some(Value::Array(ports)) = o.remove("ports") {
                o.insert(
                    "ports".into(),
                    Value::Array(ports.into_iter().map(port_text).collect()),
                );
            }
            map.insert(name, Value::Object(o));
        }
    }
    Value::Object(map)
}

fn port_text(p: Value) -> Value {
    let field = |k: &str| {
        p.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
            .unwrap_or_default()
    };
    Value::String(format!(
        "{}:{}/{}",
        field("host"),
        field("container"),
        field("protocol")
    ))
}

/// Drops nulls and empty tables and arrays, which TOML cannot or need not show.
fn prune(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, prune(v)))
                .filter(|(_, v)| !matches!(v, Value::Null) && !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(prune).collect()),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Object(o) if o.is_empty()) || matches!(v, Value::Array(a) if a.is_empty())
}
