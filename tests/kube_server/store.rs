//! The object store behind the stand-in: every resource type, one global increasing
//! `resourceVersion`, a bounded history for watches and consistent list pages, and the
//! API server's rules for each write (optimistic concurrency, generation, finalizers,
//! the status subresource, field managers, dry runs), with its error wording.

use std::collections::{BTreeMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc::UnboundedSender;

use super::selectors::{FieldSelector, LabelSelector, selector_object_matches};

/// `(group, plural)`: how a resource type is keyed.
pub type TypeKey = (String, String);

/// A resource type the server serves.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
    /// A custom resource (CRD): list items keep `kind`/`apiVersion`, an update must
    /// carry a `resourceVersion`, strategic merge patch is refused, and only
    /// `metadata.name`/`metadata.namespace` are field labels.
    pub crd: bool,
    /// Writes to the object leave `status` alone; `/status` writes only `status`.
    pub status_subresource: bool,
    /// A `/scale` subresource over `spec.replicas` (deployments, statefulsets...).
    pub scale_subresource: bool,
    /// Field labels beyond `metadata.name` and `metadata.namespace`.
    pub field_labels: Vec<String>,
    pub short_names: Vec<String>,
}

impl ResourceType {
    fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
            crd: false,
            status_subresource: false,
            scale_subresource: false,
            field_labels: Vec::new(),
            short_names: Vec::new(),
        }
    }

    /// A built-in type.
    pub fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self::new(group, version, plural, kind, namespaced)
    }

    /// A custom resource type, as a CRD defines it.
    pub fn custom(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            crd: true,
            ..Self::new(group, version, plural, kind, namespaced)
        }
    }

    pub fn with_status(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    pub fn with_scale(mut self) -> Self {
        self.scale_subresource = true;
        self
    }

    pub fn with_fields(mut self, fields: &[&str]) -> Self {
        self.field_labels = fields.iter().map(|f| f.to_string()).collect();
        self
    }

    pub fn with_short_names(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|f| f.to_string()).collect();
        self
    }

    pub fn key(&self) -> TypeKey {
        (self.group.clone(), self.plural.clone())
    }

    /// `v1` or `group/version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods` or `applicationsets.argoproj.io`, as error messages name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn supports_field(&self, label: &str) -> bool {
        label == "metadata.name"
            || (label == "metadata.namespace" && (self.namespaced || !self.crd))
            || self.field_labels.iter().any(|f| f == label)
    }

    /// `details` of a Status about object `name` of this type.
    fn details(&self, name: &str) -> Value {
        let mut details = json!({"name": name, "kind": self.plural});
        if !self.group.is_empty() {
            details["group"] = json!(self.group);
        }
        details
    }
}

/// The types every stand-in serves: what fleetdeck's clients touch on a hub and a spoke.
pub fn default_types() -> Vec<ResourceType> {
    const POD_FIELDS: &[&str] = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    ];
    const EVENT_FIELDS: &[&str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    vec![
        ResourceType::builtin("", "v1", "namespaces", "Namespace", false)
            .with_status()
            .with_fields(&["status.phase"])
            .with_short_names(&["ns"]),
        ResourceType::builtin("", "v1", "nodes", "Node", false)
            .with_status()
            .with_fields(&["spec.unschedulable"])
            .with_short_names(&["no"]),
        ResourceType::builtin("", "v1", "pods", "Pod", true)
            .with_status()
            .with_fields(POD_FIELDS)
            .with_short_names(&["po"]),
        ResourceType::builtin("", "v1", "secrets", "Secret", true).with_fields(&["type"]),
        ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true).with_short_names(&["cm"]),
        ResourceType::builtin("", "v1", "services", "Service", true)
            .with_status()
            .with_fields(&["spec.clusterIP", "spec.type"])
            .with_short_names(&["svc"]),
        ResourceType::builtin("", "v1", "serviceaccounts", "ServiceAccount", true)
            .with_short_names(&["sa"]),
        ResourceType::builtin("", "v1", "events", "Event", true)
            .with_fields(EVENT_FIELDS)
            .with_short_names(&["ev"]),
        ResourceType::builtin("apps", "v1", "deployments", "Deployment", true)
            .with_status()
            .with_scale()
            .with_short_names(&["deploy"]),
        ResourceType::builtin("apps", "v1", "replicasets", "ReplicaSet", true)
            .with_status()
            .with_scale()
            .with_fields(&["status.replicas"])
            .with_short_names(&["rs"]),
        ResourceType::builtin("apps", "v1", "statefulsets", "StatefulSet", true)
            .with_status()
            .with_scale()
            .with_short_names(&["sts"]),
        ResourceType::builtin("apps", "v1", "daemonsets", "DaemonSet", true)
            .with_status()
            .with_short_names(&["ds"]),
        ResourceType::builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        )
        .with_status()
        .with_short_names(&["pdb"]),
        ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true)
            .with_fields(&[
                "reason",
                "type",
                "reportingController",
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
            ])
            .with_short_names(&["ev"]),
        // Argo CD's CRDs: Application has no status subresource, ApplicationSet has one.
        ResourceType::custom(
            "argoproj.io",
            "v1alpha1",
            "applications",
            "Application",
            true,
        )
        .with_short_names(&["app", "apps"]),
        ResourceType::custom(
            "argoproj.io",
            "v1alpha1",
            "applicationsets",
            "ApplicationSet",
            true,
        )
        .with_status()
        .with_short_names(&["appset", "appsets"]),
        ResourceType::custom("argoproj.io", "v1alpha1", "appprojects", "AppProject", true)
            .with_short_names(&["appproj", "appprojs"]),
    ]
}

/// A failure, as the API server words it; becomes a `Status` body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: String,
    pub message: String,
    /// Boxed: errors travel in `Result`s and most have none.
    pub details: Option<Box<Value>>,
}

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// The `Status` body.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = (**details).clone();
        }
        status
    }

    pub fn not_found(ty: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", ty.qualified()),
        )
        .with_details(ty.details(name))
    }

    /// A resource the server does not serve.
    pub fn no_such_resource() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn already_exists(ty: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", ty.qualified()),
        )
        .with_details(ty.details(name))
    }

    /// A write based on a stale `resourceVersion`.
    pub fn conflict(ty: &ResourceType, name: &str) -> Self {
        Self::conflict_because(
            ty,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    fn conflict_because(ty: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                ty.qualified()
            ),
        )
        .with_details(ty.details(name))
    }

    /// 422 naming one field, as a validation failure reads.
    pub fn invalid(ty: &ResourceType, name: &str, field: &str, detail: &str) -> Self {
        let mut details = ty.details(name);
        details["causes"] = json!([{
            "reason": "FieldValueInvalid",
            "message": detail,
            "field": field,
        }]);
        Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {field}: {detail}",
                ty.qualified()
            ),
        )
        .with_details(details)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// A list or watch from a resourceVersion the history no longer holds.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }
}

/// What a watch event says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One committed change, kept for watches that resume and for consistent list pages.
#[derive(Clone, Debug)]
struct Change {
    rv: u64,
    ty: TypeKey,
    key: (String, String),
    event: EventType,
    /// The object after the change; for a deletion, its last state at the deletion's
    /// resourceVersion.
    object: Value,
    /// The object before the change (none for an addition).
    previous: Option<Value>,
}

/// An open watch: what it selects and where its events go (one JSON line each).
struct Watcher {
    id: u64,
    ty: TypeKey,
    namespace: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
    tx: UnboundedSender<String>,
}

impl Watcher {
    fn selects(&self, object: &Value) -> bool {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.namespace.as_deref().is_none_or(|ns| ns == namespace)
            && self.labels.matches(labels_of(object))
            && self.fields.matches(object)
    }
}

/// How a write was asked for.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub user_agent: Option<String>,
    /// `status` or `scale` for subresource writes.
    pub subresource: Option<String>,
}

impl WriteOptions {
    /// The manager `managedFields` records: `fieldManager`, else the User-Agent's
    /// program name, as the API server derives it.
    fn manager(&self) -> String {
        match &self.field_manager {
            Some(m) if !m.is_empty() => m.clone(),
            _ => self
                .user_agent
                .as_deref()
                .unwrap_or_default()
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// How a delete was asked for.
#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub precondition_rv: Option<String>,
    pub precondition_uid: Option<String>,
}

/// A list call's parameters.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

pub(super) fn labels_of(object: &Value) -> Option<&Map<String, Value>> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `metadata` as a mutable map, created if missing.
fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    match object.get_mut("metadata") {
        Some(Value::Object(m)) => m,
        _ => unreachable!("metadata was just made an object"),
    }
}

/// Now, as `metav1.Time` spells it.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn new_uid() -> String {
    let hex = |n: usize| -> String {
        (0..n)
            .map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0'))
            .collect()
    };
    format!(
        "{}-{}-4{}-{}{}-{}",
        hex(8),
        hex(4),
        hex(3),
        ['8', '9', 'a', 'b'][fastrand::usize(0..4)],
        hex(3),
        hex(12)
    )
}

/// `generateName` completion: five characters from the API server's alphabet.
fn generated_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[fastrand::usize(0..ALPHABET.len())] as char)
        .collect()
}

/// What `generation` follows: everything but metadata (and status, when status is a
/// subresource of its own).
fn generation_part(object: &Value, status_subresource: bool) -> Value {
    let mut part = object.clone();
    if let Some(map) = part.as_object_mut() {
        map.remove("metadata");
        map.remove("kind");
        map.remove("apiVersion");
        if status_subresource {
            map.remove("status");
        }
    }
    part
}

/// The object without what the server changes on every write, to tell a no-op.
fn comparable(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    object
}

pub struct Store {
    types: Vec<ResourceType>,
    objects: BTreeMap<TypeKey, BTreeMap<(String, String), Value>>,
    rv: u64,
    history: VecDeque<Change>,
    history_limit: usize,
    /// A watch or consistent list from below this resourceVersion is too old (410).
    compacted: u64,
    watchers: Vec<Watcher>,
    next_watcher: u64,
}

impl Store {
    pub fn new(types: Vec<ResourceType>, history_limit: usize) -> Self {
        // Real clusters never start at 0; a large start catches clients that compare
        // resourceVersions as strings.
        let start = 9_000;
        Self {
            types,
            objects: BTreeMap::new(),
            rv: start,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: start,
            watchers: Vec::new(),
            next_watcher: 1,
        }
    }

    pub fn types(&self) -> &[ResourceType] {
        &self.types
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    /// Adds (or replaces) a served type.
    pub fn register(&mut self, ty: ResourceType) {
        self.types.retain(|t| t.key() != ty.key());
        self.types.push(ty);
    }

    /// Stops serving a type (a CRD not installed), dropping its objects.
    pub fn unregister(&mut self, key: &TypeKey) {
        self.types.retain(|t| &t.key() != key);
        self.objects.remove(key);
        self.watchers.retain(|w| &w.ty != key);
    }

    /// The type at `group/version/plural`.
    pub fn type_at(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.version == version && t.plural == plural)
    }

    /// The type named `plural` or `plural.group` (kubectl's spelling).
    pub fn type_named(&self, name: &str) -> Option<&ResourceType> {
        let (plural, group) = name.split_once('.').unwrap_or((name, ""));
        self.types
            .iter()
            .find(|t| t.plural == plural && t.group == group)
    }

    /// The type of an object, from its `apiVersion` and `kind`.
    pub fn type_of(&self, object: &Value) -> Option<&ResourceType> {
        let api_version = object.get("apiVersion").and_then(Value::as_str)?;
        let kind = object.get("kind").and_then(Value::as_str)?;
        self.types
            .iter()
            .find(|t| t.api_version() == api_version && t.kind == kind)
    }

    pub fn get(&self, ty: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&ty.key())?
            .get(&(namespace.to_string(), name.to_string()))
    }

    /// Every object of a type, in a namespace or in all.
    pub fn all(&self, ty: &ResourceType, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .get(&ty.key())
            .map(|objects| {
                objects
                    .iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
                    .map(|(_, o)| o.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        self.objects
            .get(&(String::new(), "namespaces".to_string()))
            .is_some_and(|n| n.contains_key(&(String::new(), namespace.to_string())))
    }

    /// Commits `object` (or the deletion of the stored object, when `None`) as the next
    /// resourceVersion: stores it, records it and tells the watches.
    fn commit(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        object: Option<Value>,
    ) -> Value {
        self.rv += 1;
        let rv = self.rv;
        let key = (namespace.to_string(), name.to_string());
        let objects = self.objects.entry(ty.key()).or_default();
        let previous = objects.get(&key).cloned();
        let (event, mut stored) = match object {
            Some(object) => (
                if previous.is_some() {
                    EventType::Modified
                } else {
                    EventType::Added
                },
                object,
            ),
            None => (
                EventType::Deleted,
                previous.clone().unwrap_or_else(|| json!({})),
            ),
        };
        metadata_mut(&mut stored).insert("resourceVersion".into(), json!(rv.to_string()));
        if event == EventType::Deleted {
            objects.remove(&key);
        } else {
            objects.insert(key.clone(), stored.clone());
        }
        let change = Change {
            rv,
            ty: ty.key(),
            key,
            event,
            object: stored.clone(),
            previous,
        };
        self.notify(&change);
        self.history.push_back(change);
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        stored
    }

    /// Sends a change to every watch it concerns, dropping watches nobody reads.
    fn notify(&mut self, change: &Change) {
        self.watchers.retain(|w| {
            if w.ty != change.ty {
                return true;
            }
            match watch_line(w, change) {
                Some(line) => w.tx.send(line).is_ok(),
                None => !w.tx.is_closed(),
            }
        });
    }

    /// Forgets the history: any watch or list continuation from before now is too old.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Ends every open watch (as an API server restart or a load balancer does).
    pub fn close_watches(&mut self) {
        self.watchers.clear();
    }

    pub fn has_watcher(&self, id: u64) -> bool {
        self.watchers.iter().any(|w| w.id == id)
    }

    pub fn remove_watcher(&mut self, id: u64) {
        self.watchers.retain(|w| w.id != id);
    }

    pub fn watcher_count(&self) -> usize {
        self.watchers.len()
    }

    /// Fills in what the server sets on every stored object and checks what it checks.
    fn prepare_new(
        &self,
        ty: &ResourceType,
        namespace: &str,
        mut object: Value,
        opts: &WriteOptions,
        now: &str,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        check_type(ty, &object)?;
        object["apiVersion"] = json!(ty.api_version());
        object["kind"] = json!(ty.kind);
        if ty.namespaced {
            match meta_str(&object, "namespace") {
                Some(ns) if ns != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
        }
        let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
            (Some(name), _) => name.to_string(),
            (None, Some(prefix)) => format!("{prefix}{}", generated_suffix()),
            (None, None) => {
                return Err(ApiError::invalid(
                    ty,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        };
        if meta_str(&object, "resourceVersion").is_some() {
            return Err(ApiError::new(
                500,
                "InternalError",
                "Internal error occurred: resourceVersion should not be set on objects to be created",
            ));
        }
        if ty.status_subresource
            && let Some(map) = object.as_object_mut()
        {
            // Status is the controllers' to write, through the subresource.
            map.remove("status");
        }
        let meta = metadata_mut(&mut object);
        meta.insert("name".into(), json!(name));
        if ty.namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        meta.insert("uid".into(), json!(new_uid()));
        meta.insert("creationTimestamp".into(), json!(now));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        meta.insert(
            "managedFields".into(),
            json!([managed_entry(ty, opts, "Update", now)]),
        );
        Ok(object)
    }

    /// `POST`: a new object. Answers the stored object (or, in a dry run, what would be).
    pub fn create(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let now = now_rfc3339();
        let object = self.prepare_new(ty, namespace, object, opts, &now)?;
        let name = meta_str(&object, "name").unwrap_or_default().to_string();
        if ty.namespaced && !self.namespace_exists(namespace) {
            let namespaces = self.type_named("namespaces").cloned().unwrap_or_else(|| {
                ResourceType::builtin("", "v1", "namespaces", "Namespace", false)
            });
            return Err(ApiError::not_found(&namespaces, namespace));
        }
        let ns = if ty.namespaced { namespace } else { "" };
        if self.get(ty, ns, &name).is_some() {
            return Err(ApiError::already_exists(ty, &name));
        }
        if opts.dry_run {
            return Ok(object);
        }
        Ok(self.commit(ty, ns, &name, Some(object)))
    }

    /// The stored object changed to `new` (already the whole new object): the server's
    /// fields kept, generation and managed fields brought up to date, a no-op left
    /// unwritten, finalizers honoured.
    #[allow(clippy::too_many_arguments)]
    fn update_to(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        mut new: Value,
        opts: &WriteOptions,
        operation: &str,
        whole: bool,
    ) -> Result<Value, ApiError> {
        let Some(old) = self.get(ty, namespace, name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        check_type(ty, &new)?;
        new["apiVersion"] = json!(ty.api_version());
        new["kind"] = json!(ty.kind);
        match opts.subresource.as_deref() {
            _ if whole => {}
            // Only status changes through /status.
            Some("status") => {
                let status = new.get("status").cloned();
                new = old.clone();
                set_status(&mut new, status);
            }
            _ if ty.status_subresource => set_status(&mut new, old.get("status").cloned()),
            _ => {}
        }
        let now = now_rfc3339();
        {
            let old_meta = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
            let meta = metadata_mut(&mut new);
            for kept in [
                "name",
                "namespace",
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "managedFields",
            ] {
                match old_meta.get(kept) {
                    Some(v) => meta.insert(kept.into(), v.clone()),
                    None => meta.remove(kept),
                };
            }
        }
        if generation_part(&new, ty.status_subresource)
            != generation_part(&old, ty.status_subresource)
        {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            metadata_mut(&mut new).insert("generation".into(), json!(generation + 1));
        }
        if comparable(&new) == comparable(&old) {
            // Nothing changed: nothing is written and the resourceVersion stays.
            return Ok(old);
        }
        let mut managed = old
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let entry = managed_entry(ty, opts, operation, &now);
        match managed.iter_mut().find(|e| {
            e.get("manager") == entry.get("manager")
                && e.get("operation") == entry.get("operation")
                && e.get("subresource") == entry.get("subresource")
        }) {
            Some(existing) => *existing = entry,
            None => managed.push(entry),
        }
        metadata_mut(&mut new).insert("managedFields".into(), Value::Array(managed));
        if opts.dry_run {
            return Ok(new);
        }
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if meta_str(&new, "deletionTimestamp").is_some() && !finalizers_left {
            // The last finalizer is gone from an object being deleted: it goes now.
            self.commit(ty, namespace, name, Some(new));
            return Ok(self.commit(ty, namespace, name, None));
        }
        Ok(self.commit(ty, namespace, name, Some(new)))
    }

    /// `PUT`: replace, with the resourceVersion as a precondition.
    pub fn replace(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        if let Some(given) = meta_str(&object, "name")
            && given != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        if ty.namespaced
            && let Some(given) = meta_str(&object, "namespace")
            && given != namespace
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let Some(current) = self.get(ty, namespace, name) else {
            return Err(ApiError::not_found(ty, name));
        };
        match meta_str(&object, "resourceVersion") {
            None if ty.crd => {
                return Err(ApiError::invalid(
                    ty,
                    name,
                    "metadata.resourceVersion",
                    "Invalid value: 0: must be specified for an update",
                ));
            }
            Some(given) if Some(given) != meta_str(current, "resourceVersion") => {
                return Err(ApiError::conflict(ty, name));
            }
            _ => {}
        }
        self.update_to(ty, namespace, name, object, opts, "Update", false)
    }

    /// `PATCH` with `content_type`'s semantics; a `metadata.resourceVersion` in the
    /// patch is a precondition, as it is for the API server.
    pub fn patch(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        content_type: &str,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let unsupported = || {
            ApiError::new(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml{}",
                    if ty.crd {
                        ""
                    } else {
                        ", application/strategic-merge-patch+json"
                    }
                ),
            )
        };
        let operation = match media {
            "application/merge-patch+json" | "application/json-patch+json" => "Update",
            "application/strategic-merge-patch+json" if !ty.crd => "Update",
            "application/apply-patch+yaml" => "Apply",
            _ => return Err(unsupported()),
        };
        if operation == "Apply" && opts.field_manager.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::new(
                422,
                "Invalid",
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
            ));
        }
        let current = match self.get(ty, namespace, name) {
            Some(current) => current.clone(),
            // Server-side apply creates what is missing.
            None if operation == "Apply" => {
                let mut object = body.clone();
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("resourceVersion");
                }
                return self.create(ty, namespace, object, opts);
            }
            None => return Err(ApiError::not_found(ty, name)),
        };
        let mut patched = current.clone();
        match media {
            "application/json-patch+json" => {
                let operations: json_patch::Patch = serde_json::from_value(body.clone())
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut patched, &operations)
                    .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
            }
            // Strategic merge patch is a merge patch for every field fleetdeck writes
            // (maps and scalars); list merge keys are not modelled.
            _ => {
                if !body.is_object() {
                    return Err(ApiError::bad_request(
                        "the body of the request was in an unknown format",
                    ));
                }
                json_patch::merge(&mut patched, body);
            }
        }
        match meta_str(&patched, "resourceVersion") {
            Some(rv) if Some(rv) != meta_str(&current, "resourceVersion") => {
                return Err(ApiError::conflict(ty, name));
            }
            _ => {}
        }
        if meta_str(&patched, "name") != Some(name) {
            return Err(ApiError::bad_request(
                "metadata.name: Invalid value: the name of the object cannot be changed by a patch",
            ));
        }
        self.update_to(ty, namespace, name, patched, opts, operation, false)
    }

    /// `DELETE`: gone at once, or marked for deletion while finalizers remain.
    /// Answers the object and whether it is gone.
    pub fn delete(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let Some(current) = self.get(ty, namespace, name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        let in_object = |field| meta_str(&current, field).unwrap_or_default().to_string();
        if let Some(uid) = &opts.precondition_uid
            && *uid != in_object("uid")
        {
            return Err(ApiError::conflict_because(
                ty,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    in_object("uid")
                ),
            ));
        }
        if let Some(rv) = &opts.precondition_rv
            && *rv != in_object("resourceVersion")
        {
            return Err(ApiError::conflict_because(
                ty,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    in_object("resourceVersion")
                ),
            ));
        }
        let finalizers = current
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if opts.dry_run {
            return Ok((current, !finalizers));
        }
        if finalizers {
            if meta_str(&current, "deletionTimestamp").is_some() {
                return Ok((current, false));
            }
            let mut marked = current;
            let meta = metadata_mut(&mut marked);
            meta.insert("deletionTimestamp".into(), json!(now_rfc3339()));
            meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            return Ok((self.commit(ty, namespace, name, Some(marked)), false));
        }
        Ok((self.commit(ty, namespace, name, None), true))
    }

    /// Writes `object` as a controller would (the test's hand): creates or replaces it
    /// whole, status included, with no precondition. Its namespace is created if
    /// missing. Answers the stored object.
    pub fn put(&mut self, ty: &ResourceType, mut object: Value) -> Value {
        let namespace = if ty.namespaced {
            meta_str(&object, "namespace")
                .unwrap_or("default")
                .to_string()
        } else {
            String::new()
        };
        if ty.namespaced && !self.namespace_exists(&namespace) {
            self.ensure_namespace(&namespace);
        }
        let name = meta_str(&object, "name")
            .map(str::to_string)
            .unwrap_or_else(generated_suffix);
        object["apiVersion"] = json!(ty.api_version());
        object["kind"] = json!(ty.kind);
        let now = now_rfc3339();
        match self.get(ty, &namespace, &name) {
            Some(_) => {
                metadata_mut(&mut object).remove("resourceVersion");
                let opts = WriteOptions::default();
                self.update_to(ty, &namespace, &name, object, &opts, "Update", true)
                    .unwrap_or_else(|e| panic!("putting {}: {}", ty.qualified(), e.message))
            }
            None => {
                let meta = metadata_mut(&mut object);
                meta.insert("name".into(), json!(name));
                if ty.namespaced {
                    meta.insert("namespace".into(), json!(namespace));
                }
                meta.remove("resourceVersion");
                meta.entry("uid").or_insert_with(|| json!(new_uid()));
                meta.entry("creationTimestamp")
                    .or_insert_with(|| json!(now));
                meta.entry("generation").or_insert_with(|| json!(1));
                self.commit(ty, &namespace, &name, Some(object))
            }
        }
    }

    /// Creates namespace `name` if it does not exist.
    pub fn ensure_namespace(&mut self, name: &str) {
        if self.namespace_exists(name) {
            return;
        }
        let Some(ty) = self.type_named("namespaces").cloned() else {
            return;
        };
        let object = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": name,
                "uid": new_uid(),
                "creationTimestamp": now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        self.commit(&ty, "", name, Some(object));
    }

    /// Removes an object at once, finalizers or not (the test's hand). Whether it was there.
    pub fn remove(&mut self, ty: &ResourceType, namespace: &str, name: &str) -> bool {
        if self.get(ty, namespace, name).is_none() {
            return false;
        }
        self.commit(ty, namespace, name, None);
        true
    }

    /// The objects of a type as they were at `rv`, rebuilt from the history.
    fn objects_at(&self, ty: &ResourceType, rv: u64) -> BTreeMap<(String, String), Value> {
        let mut objects = self.objects.get(&ty.key()).cloned().unwrap_or_default();
        for change in self.history.iter().rev() {
            if change.rv <= rv {
                break;
            }
            if change.ty != ty.key() {
                continue;
            }
            match (&change.event, &change.previous) {
                (EventType::Added, _) => {
                    objects.remove(&change.key);
                }
                (_, Some(previous)) => {
                    objects.insert(change.key.clone(), previous.clone());
                }
                (_, None) => {}
            }
        }
        objects
    }

    /// Checks the selectors against the type's field labels.
    pub fn check_fields(ty: &ResourceType, fields: &FieldSelector) -> Result<(), ApiError> {
        match fields.fields().find(|f| !ty.supports_field(f)) {
            Some(field) => Err(ApiError::bad_request(format!(
                "field label not supported: {field}"
            ))),
            None => Ok(()),
        }
    }

    /// `GET` a collection: one page of it, at one resourceVersion across pages.
    pub fn list(
        &self,
        ty: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<Value, ApiError> {
        Self::check_fields(ty, &opts.fields)?;
        let (at, start) = match &opts.continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)
                    .ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
                if rv < self.compacted {
                    return Err(ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ));
                }
                (rv, Some(start))
            }
            None => match (
                opts.resource_version_match.as_deref(),
                opts.resource_version.as_deref(),
            ) {
                (Some("Exact"), Some(rv)) => {
                    let rv: u64 = rv.parse().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {rv}"))
                    })?;
                    if rv < self.compacted {
                        return Err(ApiError::expired(format!(
                            "too old resource version: {rv} ({})",
                            self.compacted
                        )));
                    }
                    (rv, None)
                }
                _ => (self.rv, None),
            },
        };
        let objects = if at == self.rv {
            self.objects.get(&ty.key()).cloned().unwrap_or_default()
        } else {
            self.objects_at(ty, at)
        };
        let selected: Vec<(String, Value)> = objects
            .into_iter()
            .filter(|((ns, _), _)| namespace.is_none_or(|n| n == ns))
            .filter(|(_, o)| opts.labels.matches(labels_of(o)) && opts.fields.matches(o))
            .map(|((ns, name), o)| (format!("{ns}/{name}"), o))
            .filter(|(key, _)| start.as_deref().is_none_or(|s| key.as_str() > s))
            .collect();
        let limit = opts.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let remaining = selected.len().saturating_sub(limit);
        let page: Vec<(String, Value)> = selected.into_iter().take(limit).collect();
        let mut metadata = json!({"resourceVersion": at.to_string()});
        if remaining > 0
            && let Some((last, _)) = page.last()
        {
            metadata["continue"] = json!(encode_continue(at, last));
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = page
            .into_iter()
            .map(|(_, mut o)| {
                // Built-in types' list items carry no kind or apiVersion; custom
                // resources' do.
                if !ty.crd
                    && let Some(map) = o.as_object_mut()
                {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
                o
            })
            .collect();
        Ok(json!({
            "kind": format!("{}List", ty.kind),
            "apiVersion": ty.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Opens a watch. Its lines go to `tx`: the initial state (when asked for it or
    /// when no resourceVersion is given) or the changes since `resource_version`, then
    /// every change as it commits. A too old resourceVersion is one 410 `ERROR` line
    /// and no watch (`None`).
    #[allow(clippy::too_many_arguments)]
    pub fn watch(
        &mut self,
        ty: &ResourceType,
        namespace: Option<&str>,
        labels: LabelSelector,
        fields: FieldSelector,
        resource_version: Option<&str>,
        send_initial_events: bool,
        bookmarks: bool,
        tx: UnboundedSender<String>,
    ) -> Result<Option<u64>, ApiError> {
        Self::check_fields(ty, &fields)?;
        let watcher = Watcher {
            id: self.next_watcher,
            ty: ty.key(),
            namespace: namespace.map(str::to_string),
            labels,
            fields,
            tx,
        };
        self.next_watcher += 1;
        let from = resource_version
            .filter(|rv| !rv.is_empty() && *rv != "0")
            .map(|rv| {
                rv.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid resource version: {rv}")))
            })
            .transpose()?;
        match from {
            Some(rv) if !send_initial_events => {
                if rv < self.compacted {
                    let error = ApiError::expired(format!(
                        "too old resource version: {rv} ({})",
                        self.compacted
                    ));
                    let _ = watcher
                        .tx
                        .send(json!({"type": "ERROR", "object": error.status()}).to_string());
                    return Ok(None);
                }
                for change in self
                    .history
                    .iter()
                    .filter(|c| c.rv > rv && c.ty == ty.key())
                {
                    if let Some(line) = watch_line(&watcher, change) {
                        let _ = watcher.tx.send(line);
                    }
                }
            }
            _ => {
                let objects = self.objects.get(&ty.key()).cloned().unwrap_or_default();
                for object in objects.values().filter(|o| watcher.selects(o)) {
                    let _ = watcher
                        .tx
                        .send(json!({"type": "ADDED", "object": object}).to_string());
                }
                if send_initial_events && bookmarks {
                    let _ = watcher.tx.send(bookmark_line(ty, self.rv, true));
                }
            }
        }
        let id = watcher.id;
        self.watchers.push(watcher);
        Ok(Some(id))
    }

    /// Scale of a deployment-like object, as the `/scale` subresource shows it.
    pub fn scale_of(object: &Value) -> Value {
        let meta = object.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let selector = object
            .pointer("/spec/selector/matchLabels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
            "status": {
                "replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
                "selector": selector,
            },
        })
    }

    /// `PATCH` or `PUT` on `/scale`: the new replica count onto the object.
    pub fn write_scale(
        &mut self,
        ty: &ResourceType,
        namespace: &str,
        name: &str,
        content_type: Option<&str>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let Some(current) = self.get(ty, namespace, name).cloned() else {
            return Err(ApiError::not_found(ty, name));
        };
        let mut scale = Self::scale_of(&current);
        match content_type {
            Some(media) if media.starts_with("application/json-patch+json") => {
                let operations: json_patch::Patch = serde_json::from_value(body.clone())
                    .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                json_patch::patch(&mut scale, &operations)
                    .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
            }
            Some(_) => json_patch::merge(&mut scale, body),
            None => scale = body.clone(),
        }
        if let Some(rv) = meta_str(&scale, "resourceVersion")
            && Some(rv) != meta_str(&current, "resourceVersion")
        {
            return Err(ApiError::conflict(ty, name));
        }
        let replicas = scale
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .ok_or_else(|| ApiError::invalid(ty, name, "spec.replicas", "Required value"))?;
        let mut updated = current;
        updated["spec"]["replicas"] = json!(replicas);
        let opts = WriteOptions {
            subresource: Some("scale".into()),
            ..opts.clone()
        };
        let stored = self.update_to(ty, namespace, name, updated, &opts, "Update", false)?;
        Ok(Self::scale_of(&stored))
    }

    /// `POST pods/NAME/eviction`: refused with 429 while a PodDisruptionBudget that
    /// selects the pod allows no disruption; else the pod is deleted and the budget's
    /// allowance spent, as the eviction REST handler does.
    pub fn evict(&mut self, namespace: &str, name: &str, dry_run: bool) -> Result<Value, ApiError> {
        let pods = self
            .type_named("pods")
            .cloned()
            .ok_or_else(ApiError::no_such_resource)?;
        let Some(pod) = self.get(&pods, namespace, name).cloned() else {
            return Err(ApiError::not_found(&pods, name));
        };
        let pdbs = self.type_named("poddisruptionbudgets.policy").cloned();
        let budgets: Vec<Value> = pdbs
            .as_ref()
            .map(|t| self.all(t, Some(namespace)))
            .unwrap_or_default()
            .into_iter()
            .filter(|pdb| {
                pdb.pointer("/spec/selector")
                    .is_some_and(|s| selector_object_matches(s, labels_of(&pod)))
            })
            .collect();
        if let Some(blocking) = budgets.iter().find(|pdb| {
            pdb.pointer("/status/disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                <= 0
        }) {
            let number = |p: &str| blocking.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            return Err(ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
            .with_details(json!({"causes": [{
                "reason": "DisruptionBudget",
                "message": format!(
                    "The disruption budget {} needs {} healthy pods and has {} currently",
                    meta_str(blocking, "name").unwrap_or_default(),
                    number("/status/desiredHealthy"),
                    number("/status/currentHealthy"),
                ),
            }]})));
        }
        let success = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success", "code": 201,
        });
        if dry_run {
            return Ok(success);
        }
        if let Some(pdbs) = &pdbs {
            for mut budget in budgets {
                let allowed = budget
                    .pointer("/status/disruptionsAllowed")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                budget["status"]["disruptionsAllowed"] = json!(allowed - 1);
                budget["status"]["disruptedPods"][name] = json!(now_rfc3339());
                let pdb_name = meta_str(&budget, "name").unwrap_or_default().to_string();
                self.commit(pdbs, namespace, &pdb_name, Some(budget));
            }
        }
        self.commit(&pods, namespace, name, None);
        Ok(success)
    }
}

fn set_status(object: &mut Value, status: Option<Value>) {
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(status) => map.insert("status".into(), status),
            None => map.remove("status"),
        };
    }
}

/// The API version and kind in a body must be the type's, when given.
fn check_type(ty: &ResourceType, object: &Value) -> Result<(), ApiError> {
    if let Some(api_version) = object.get("apiVersion").and_then(Value::as_str)
        && api_version != ty.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            ty.api_version()
        )));
    }
    if let Some(kind) = object.get("kind").and_then(Value::as_str)
        && kind != ty.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            ty.kind
        )));
    }
    Ok(())
}

/// A `managedFields` entry for a write by `opts`'s manager. The field set itself is not
/// computed (an empty `fieldsV1`): tests read who wrote, not which fields.
fn managed_entry(ty: &ResourceType, opts: &WriteOptions, operation: &str, now: &str) -> Value {
    let mut entry = json!({
        "manager": opts.manager(),
        "operation": operation,
        "apiVersion": ty.api_version(),
        "time": now,
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    });
    if let Some(sub) = &opts.subresource {
        entry["subresource"] = json!(sub);
    }
    entry
}

/// The line a watch gets for a change, if the change concerns it: an object that
/// starts to match is ADDED, one that stops matching is DELETED (its old state at the
/// new resourceVersion), as the watch cache does.
fn watch_line(watcher: &Watcher, change: &Change) -> Option<String> {
    let now = watcher.selects(&change.object);
    let before = change.previous.as_ref().is_some_and(|p| watcher.selects(p));
    let (kind, object) = match change.event {
        EventType::Added if now => (EventType::Added, change.object.clone()),
        EventType::Modified if now && before => (EventType::Modified, change.object.clone()),
        EventType::Modified if now => (EventType::Added, change.object.clone()),
        EventType::Modified if before => {
            let mut old = change.previous.clone().unwrap_or_default();
            metadata_mut(&mut old).insert("resourceVersion".into(), json!(change.rv.to_string()));
            (EventType::Deleted, old)
        }
        EventType::Deleted if before || now => (EventType::Deleted, change.object.clone()),
        _ => return None,
    };
    Some(json!({"type": kind.as_str(), "object": object}).to_string())
}

/// A `BOOKMARK` line at `rv`; `initial_end` marks the end of the initial events of a
/// streaming list.
pub fn bookmark_line(ty: &ResourceType, rv: u64, initial_end: bool) -> String {
    let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({
        "type": "BOOKMARK",
        "object": {"kind": ty.kind, "apiVersion": ty.api_version(), "metadata": metadata},
    })
    .to_string()
}

fn encode_continue(rv: u64, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{start}\u{0}")});
    STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> Option<(u64, String)> {
    let bytes = STANDARD.decode(token).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let rv = value.get("rv")?.as_u64()?;
    let start = value.get("start")?.as_str()?.trim_end_matches('\u{0}');
    Some((rv, start.to_string()))
}
