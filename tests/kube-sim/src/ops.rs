//! The write verbs, shared by the HTTP handlers and the controller: create, update (replace,
//! patch, status, scale all end here), server-side apply and delete with propagation policy.

use serde_json::{Value, json};

use crate::apply::{ApplyRequest, server_side_apply, track_update};
use crate::error::ApiError;
use crate::objects::{for_version, prepare_create, prepare_update};
use crate::resources::ResourceType;
use crate::state::SimState;

/// How dependents are treated when their owner is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Propagation {
    /// Dependents lose their owner reference and stay.
    Orphan,
    /// The owner goes now; the garbage collector deletes dependents right after.
    Background,
    /// Dependents are deleted before the owner (synchronously, in the simulator).
    Foreground,
}

impl Propagation {
    /// Parses `propagationPolicy` (query parameter or DeleteOptions body field).
    pub(crate) fn parse(s: &str) -> Result<Propagation, ApiError> {
        match s {
            "Orphan" => Ok(Propagation::Orphan),
            "Background" => Ok(Propagation::Background),
            "Foreground" => Ok(Propagation::Foreground),
            other => Err(ApiError::bad_request(format!(
                "invalid propagationPolicy: {other}"
            ))),
        }
    }
}

fn namespace_exists(state: &SimState, rt: &ResourceType, ns: &str) -> Result<(), ApiError> {
    if rt.namespaced && state.store.get("/namespaces", "", ns).is_none() {
        return Err(ApiError::not_found("namespaces", "", ns));
    }
    Ok(())
}

/// Creates an object; `manager` (when given) gets an `Update` managedFields entry.
pub(crate) fn create(
    state: &SimState,
    rt: &ResourceType,
    version: &str,
    ns: &str,
    body: Value,
    manager: Option<&str>,
) -> Result<Value, ApiError> {
    namespace_exists(state, rt, ns)?;
    let mut obj = prepare_create(rt, version, ns, body)?;
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if let Some(manager) = manager {
        track_update(
            None,
            &mut obj,
            manager,
            &rt.api_version(version),
            rt.builtin,
            None,
        );
    }
    let (plural, group) = (rt.plural.clone(), rt.group.clone());
    state.store.create(&rt.key(), obj, |o| {
        ApiError::already_exists(
            &plural,
            &group,
            o["metadata"]["name"].as_str().unwrap_or_default(),
        )
    })
}

/// Updates an existing object with `f(current) -> desired`, then applies the update rules
/// (status subresource, generation, preconditions) and field ownership.
#[allow(clippy::too_many_arguments)] // the request coordinates plus the change
pub(crate) fn update(
    state: &SimState,
    rt: &ResourceType,
    version: &str,
    ns: &str,
    name: &str,
    subresource: Option<&str>,
    manager: Option<&str>,
    f: impl FnOnce(&Value) -> Result<Value, ApiError>,
) -> Result<Value, ApiError> {
    let (obj, _) = state.store.modify(&rt.key(), ns, name, |current| {
        let current = current.ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        let desired = f(current)?;
        let mut new = prepare_update(rt, version, current, desired, subresource)?;
        match manager {
            Some(manager) => track_update(
                Some(current),
                &mut new,
                manager,
                &rt.api_version(version),
                rt.builtin,
                subresource,
            ),
            None => new["metadata"]["managedFields"] = current["metadata"]["managedFields"].clone(),
        }
        if new["metadata"]["managedFields"].is_null()
            && let Some(m) = new["metadata"].as_object_mut()
        {
            m.remove("managedFields");
        }
        Ok(new)
    })?;
    Ok(obj)
}

/// Server-side apply: creates the object when missing, else merges with ownership checks.
#[allow(clippy::too_many_arguments)] // the request's coordinates plus the apply options
pub(crate) fn apply(
    state: &SimState,
    rt: &ResourceType,
    version: &str,
    ns: &str,
    name: &str,
    subresource: Option<&str>,
    config: Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApiError> {
    if config["metadata"]["name"]
        .as_str()
        .is_some_and(|n| n != name)
    {
        return Err(ApiError::bad_request(
            "the name of the object does not match the name on the URL",
        ));
    }
    let api_version = rt.api_version(version);
    if let Some(body_version) = config["apiVersion"].as_str()
        && body_version != api_version
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({body_version}) does not match the expected API version ({api_version})"
        )));
    }
    let mut config = config;
    if rt.status && subresource.is_none() {
        // Status is not applied through the main resource; the real server resets it too.
        if let Some(m) = config.as_object_mut() {
            m.remove("status");
        }
    }
    let req = ApplyRequest {
        manager,
        force,
        api_version: &api_version,
        builtin: rt.builtin,
        subresource,
    };
    if state.store.get(&rt.key(), ns, name).is_none() {
        if subresource.is_some() {
            return Err(ApiError::not_found(&rt.plural, &rt.group, name));
        }
        namespace_exists(state, rt, ns)?;
        let mut config = for_version(rt, version, config);
        config["metadata"]["name"] = json!(name);
        let merged = server_side_apply(None, &config, &req)?;
        let managed = merged["metadata"]["managedFields"].clone();
        let mut obj = prepare_create(rt, version, ns, merged)?;
        obj["metadata"]["managedFields"] = managed;
        let (plural, group) = (rt.plural.clone(), rt.group.clone());
        return match state.store.create(&rt.key(), obj, |o| {
            ApiError::already_exists(
                &plural,
                &group,
                o["metadata"]["name"].as_str().unwrap_or_default(),
            )
        }) {
            // Lost a race with a concurrent create: apply onto what is there now.
            Err(e) if e.reason == "AlreadyExists" => apply(
                state,
                rt,
                version,
                ns,
                name,
                subresource,
                config,
                manager,
                force,
            ),
            other => other,
        };
    }
    let (obj, _) = state.store.modify(&rt.key(), ns, name, |current| {
        let current = current.ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
        let merged = server_side_apply(Some(current), &config, &req)?;
        let managed = merged["metadata"]["managedFields"].clone();
        let mut new = prepare_update(rt, version, current, merged, subresource)?;
        new["metadata"]["managedFields"] = managed;
        Ok(new)
    })?;
    Ok(obj)
}

/// Namespaces the real API server refuses to delete.
const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Deletes an object with the given propagation policy; returns its last state.
pub(crate) fn delete(
    state: &SimState,
    rt: &ResourceType,
    ns: &str,
    name: &str,
    policy: Propagation,
) -> Result<Value, ApiError> {
    if rt.builtin && rt.kind == "Namespace" && SYSTEM_NAMESPACES.contains(&name) {
        return Err(ApiError {
            code: 403,
            reason: "Forbidden",
            message: format!(
                "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
            ),
            details: None,
        });
    }
    let obj = state
        .store
        .get(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))?;
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match policy {
        Propagation::Orphan => {
            for (res, dep) in state.store.dependents(&uid) {
                let (dns, dname) = crate::objects::name_of(&dep);
                let (dns, dname) = (dns.to_string(), dname.to_string());
                // Missing dependents were deleted concurrently; nothing to orphan then.
                let _ = state.store.modify(&res, &dns, &dname, |cur| {
                    let mut cur = cur
                        .cloned()
                        .ok_or_else(|| ApiError::not_found(&res, "", &dname))?;
                    if let Some(refs) = cur["metadata"]["ownerReferences"].as_array_mut() {
                        refs.retain(|r| r["uid"].as_str() != Some(uid.as_str()));
                        if refs.is_empty()
                            && let Some(m) = cur["metadata"].as_object_mut()
                        {
                            m.remove("ownerReferences");
                        }
                    }
                    Ok(cur)
                });
            }
        }
        Propagation::Foreground => delete_dependents(state, &uid),
        Propagation::Background => {}
    }
    if rt.kind == "Namespace" && rt.builtin {
        for (res, o) in state.store.in_namespace(name) {
            let (ons, oname) = crate::objects::name_of(&o);
            state.store.delete(&res, ons, oname);
        }
    }
    state
        .store
        .delete(&rt.key(), ns, name)
        .ok_or_else(|| ApiError::not_found(&rt.plural, &rt.group, name))
}

fn delete_dependents(state: &SimState, uid: &str) {
    for (res, dep) in state.store.dependents(uid) {
        if let Some(dep_uid) = dep["metadata"]["uid"].as_str() {
            delete_dependents(state, dep_uid);
        }
        let (dns, dname) = crate::objects::name_of(&dep);
        state.store.delete(&res, dns, dname);
    }
}

/// One garbage-collection pass: deletes objects all of whose owners are gone. Returns how many
/// it deleted (the controller repeats while dependents of dependents remain).
pub(crate) fn collect_garbage(state: &SimState) -> usize {
    let orphans = state.store.orphans();
    for (res, obj) in &orphans {
        let (ns, name) = crate::objects::name_of(obj);
        state.store.delete(res, ns, name);
    }
    orphans.len()
}
