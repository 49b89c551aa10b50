//! The IAM policies of `docs/iam/` are the ones fleetdeck needs: every AWS action the
//! code calls is allowed by the policy of the side that calls it, and the StackSet
//! template for member accounts carries the same documents as the JSON files.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn json(file: &str) -> Value {
    let path = root().join("docs/iam").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The actions a policy document allows.
fn allowed(policy: &Value) -> Vec<String> {
    let mut actions = Vec::new();
    for statement in policy["Statement"].as_array().expect("Statement") {
        assert_eq!(statement["Effect"], "Allow", "{statement}");
        match &statement["Action"] {
            Value::String(a) => actions.push(a.clone()),
            Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().expect("action").to_string()))
            }
            other => panic!("Action {other}"),
        }
    }
    actions
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `"service:Action"` literal in `src/` (the names calls are made and counted
/// under, as in `call(&budget, &mut stats, "eks:ListClusters", ...)`), outside tests.
fn actions_in_code() -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut actions = Vec::new();
    for file in files {
        if file.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        // Unit tests sit in a module at the end of a file.
        let code = text
            .split("\n#[cfg(test)]\nmod ")
            .next()
            .unwrap_or_default();
        for literal in code.split('"').skip(1).step_by(2) {
            let Some((service, action)) = literal.split_once(':') else {
                continue;
            };
            let is_action = !service.is_empty()
                && service
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                && action
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_uppercase())
                && action.chars().all(|c| c.is_ascii_alphanumeric());
            if is_action && !actions.contains(&literal.to_string()) {
                actions.push(literal.to_string());
            }
        }
    }
    actions.sort();
    actions
}

#[test]
fn every_aws_action_fleetdeck_calls_is_in_the_documented_policies() {
    let code = actions_in_code();
    for expected in [
        "eks:ListClusters",
        "cloudwatch:GetMetricData",
        "organizations:ListAccounts",
    ] {
        assert!(
            code.contains(&expected.to_string()),
            "the scan missed {expected}: {code:?}"
        );
    }
    let organization = allowed(&json("organization-policy.json"));
    let member = allowed(&json("member-policy.json"));
    let missing: Vec<&String> = code
        .iter()
        .filter(|a| !organization.contains(a) && !member.contains(a))
        .collect();
    assert!(
        missing.is_empty(),
        "called by the code but in no policy of docs/iam/ (add them, and to the README): {missing:?}"
    );
    // The management side lists accounts and assumes roles, nothing else; members are
    // read only, but for one deliberate write: an operator's ack of a Security Hub
    // finding (its workflow status and note).
    assert_eq!(
        organization,
        ["organizations:ListAccounts", "sts:AssumeRole"]
    );
    const WRITES: [&str; 1] = ["securityhub:BatchUpdateFindings"];
    for action in &member {
        let verb = action.split_once(':').map(|(_, a)| a).unwrap_or_default();
        assert!(
            ["List", "Describe", "Get"]
                .iter()
                .any(|v| verb.starts_with(v))
                || WRITES.contains(&action.as_str()),
            "{action} is not a read"
        );
    }
    for write in WRITES {
        assert!(
            code.contains(&write.to_string()),
            "{write} is no longer called"
        );
    }
}

/// `{"Ref": "X"}` -> `"<X>"`, as the JSON files write the template's parameters.
fn refs_as_placeholders(value: Value) -> Value {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            Value::String(format!("<{}>", map["Ref"].as_str().expect("Ref")))
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, refs_as_placeholders(v)))
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.into_iter().map(refs_as_placeholders).collect()),
        other => other,
    }
}

/// A single action may be written as a string or a one-item list.
fn actions_as_lists(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("Action", Value::String(a)) => (k, Value::Array(vec![Value::String(a)])),
                    (_, v) => (k, actions_as_lists(v)),
                })
                .collect(),
        ),
        Value::Array(list) => Value::Array(list.into_iter().map(actions_as_lists).collect()),
        other => other,
    }
}

#[test]
fn the_stackset_template_carries_the_same_documents_as_the_json_files() {
    let path = root().join("docs/iam/member-role.yaml");
    let text = std::fs::read_to_string(&path).expect("template");
    let template: Value = serde_norway::from_str(&text).expect("the template is YAML");
    let role = &template["Resources"]["FleetdeckViewer"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert_eq!(role["Properties"]["RoleName"], "fleetdeck-viewer");
    assert_eq!(
        actions_as_lists(refs_as_placeholders(
            role["Properties"]["AssumeRolePolicyDocument"].clone()
        )),
        actions_as_lists(json("member-trust-policy.json"))
    );
    assert_eq!(
        actions_as_lists(role["Properties"]["Policies"][0]["PolicyDocument"].clone()),
        actions_as_lists(json("member-policy.json"))
    );
    // The organization policy names the role the template creates.
    assert!(
        json("organization-policy.json")
            .to_string()
            .contains(":role/fleetdeck-viewer"),
        "the organization policy must allow assuming the template's role"
    );
}
