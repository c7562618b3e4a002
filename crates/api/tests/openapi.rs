//! The served OpenAPI document (`openapi.json`) cannot drift from the router: every route
//! registered in `src/routes/mod.rs` is documented with exactly its methods, and nothing else is.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const DOCUMENT: &str = include_str!("../openapi.json");
const ROUTES: &str = include_str!("../src/routes/mod.rs");
const METHODS: [&str; 7] = ["get", "post", "put", "delete", "patch", "head", "options"];
/// Routes that need no token: the document must say so with `security: []`.
const PUBLIC_PATHS: [&str; 2] = ["/drydock/v1/health", "/drydock/v1/openapi.json"];

fn document() -> Value {
    serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
}

/// Every `.route("/path", get(..).post(..))` in the router's source, as path → methods.
fn routes(source: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut routes = BTreeMap::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        rest = &rest[start + ".route(".len()..];
        let open = rest.find('"').expect("a route path literal");
        let close = open + 1 + rest[open + 1..].find('"').expect("the end of the route path literal");
        let path = rest[open + 1..close].to_string();
        let handlers = call_arguments(&rest[close + 1..]);
        let methods = top_level_calls(handlers);
        assert!(!methods.is_empty(), "route {path} registers no method");
        let previous = routes.insert(path.clone(), methods);
        assert!(previous.is_none(), "route {path} is registered twice");
        rest = &rest[close + 1 + handlers.len()..];
    }
    routes
}

/// The text up to the `)` that closes the call whose arguments start at `text`.
fn call_arguments(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return &text[..i],
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses in a .route(...) call");
}

/// The HTTP methods in a handler expression such as `get(a::list).post(a::create)` or
/// `axum::routing::delete(a::revoke)`: method names called at the top level (handler names
/// such as `droplets::delete` inside the parentheses are arguments, not calls).
fn top_level_calls(expression: &str) -> BTreeSet<String> {
    let mut methods = BTreeSet::new();
    let mut depth = 0usize;
    let mut word = String::new();
    for c in expression.chars() {
        match c {
            '(' => {
                if depth == 0 && METHODS.contains(&word.as_str()) {
                    methods.insert(word.clone());
                }
                depth += 1;
                word.clear();
            }
            ')' => {
                depth -= 1;
                word.clear();
            }
            c if c.is_ascii_alphanumeric() || c == '_' => word.push(c),
            _ => word.clear(),
        }
    }
    methods
}

fn documented(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let paths = document["paths"].as_object().expect("the document has paths");
    paths
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .expect("a path item is an object")
                .keys()
                .filter(|key| METHODS.contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().expect("the document has paths") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            if METHODS.contains(&method.as_str()) {
                operations.push((path.clone(), method.clone(), operation));
            }
        }
    }
    operations
}

#[test]
fn the_route_parser_reads_every_form_the_router_uses() {
    let source = r#"
        .route("/a", get(x::get).post(x::create).delete(x::delete_by_tag))
        .route("/a/{id}", axum::routing::delete(x::revoke))
        .route("/b", get(|| async { "ok" }))
    "#;
    let routes = routes(source);
    let methods = |path: &str| routes[path].iter().map(String::as_str).collect::<Vec<_>>();
    assert_eq!(methods("/a"), ["delete", "get", "post"]);
    assert_eq!(methods("/a/{id}"), ["delete"]);
    assert_eq!(methods("/b"), ["get"]);
}

#[test]
fn every_route_is_documented_with_exactly_its_methods() {
    let routes = routes(ROUTES);
    assert!(routes.len() >= 30, "found only {} routes in src/routes/mod.rs: is the parser broken?", routes.len());
    let documented = documented(&document());
    let mut problems = Vec::new();
    for (path, methods) in &routes {
        match documented.get(path) {
            None => problems.push(format!("{path} is served but not documented")),
            Some(described) if described != methods => {
                problems.push(format!("{path}: the router serves {methods:?}, the document describes {described:?}"))
            }
            Some(_) => {}
        }
    }
    for path in documented.keys().filter(|path| !routes.contains_key(*path)) {
        problems.push(format!("{path} is documented but not served"));
    }
    assert!(problems.is_empty(), "openapi.json and src/routes/mod.rs disagree:\n{}", problems.join("\n"));
}

#[test]
fn operations_are_complete_and_secured() {
    let document = document();
    assert_eq!(document["openapi"], "3.0.3");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"), "info.version is the crate's version");
    assert_eq!(document["components"]["securitySchemes"]["bearer_auth"]["scheme"], "bearer");
    assert_eq!(document["security"], serde_json::json!([{"bearer_auth": []}]));
    let mut ids = BTreeSet::new();
    for (path, method, operation) in operations(&document) {
        let name = format!("{} {path}", method.to_uppercase());
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{name} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        let responses = operation["responses"].as_object().unwrap_or_else(|| panic!("{name} has no responses"));
        assert!(responses.keys().any(|code| code.starts_with('2')), "{name} documents no success code");
        let public = PUBLIC_PATHS.contains(&path.as_str());
        if public {
            assert_eq!(operation["security"], serde_json::json!([]), "{name} needs no token: security must be []");
        } else {
            assert!(operation.get("security").is_none(), "{name} must use the global bearer_auth security");
            for code in ["401", "403", "429"] {
                assert!(responses.contains_key(code), "{name} does not document {code}");
            }
        }
        for (code, response) in responses.iter().filter(|(code, _)| code.starts_with('4')) {
            assert_eq!(
                response["$ref"].as_str().map(|r| r.starts_with("#/components/responses/")),
                Some(true),
                "{name} {code} must be one of the shared error responses"
            );
        }
        // Every `{parameter}` in the path is declared, as a path parameter, by the operation.
        let declared: BTreeSet<String> = operation["parameters"]
            .as_array()
            .map(|parameters| {
                parameters
                    .iter()
                    .map(|p| resolve(&document, p))
                    .filter(|p| p["in"] == "path")
                    .map(|p| p["name"].as_str().expect("a parameter name").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let in_path: BTreeSet<String> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(str::to_string)
            .collect();
        assert_eq!(declared, in_path, "{name}: path parameters");
    }
}

#[test]
fn every_reference_resolves() {
    let document = document();
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("{reference} is not a local reference"));
        assert!(document.pointer(pointer).is_some(), "{reference} does not resolve");
    }
}

fn resolve<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => document
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("{reference} does not resolve")),
        None => value,
    }
}

fn collect_references(value: &Value, references: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(reference)) => references.push(reference.clone()),
                    _ => collect_references(value, references),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_references(item, references)),
        _ => {}
    }
}
