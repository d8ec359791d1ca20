//! The template variables of a target and what the engine renders with them: the target's
//! manifests before they are applied, and the webhook call and analysis variables sent to the
//! services that run them. The substitution itself is the deploy-file language's
//! ([`ferry_deploy::rendering`]); this module decides which variables each place may use.
//!
//! Secrets: a manifest may not use `{{secrets.X}}` (its text would be stored in the cluster and
//! in the step history); a webhook keeps the reference for svc-webhook to resolve when it
//! sends, after the engine checked that the secret exists. No plaintext passes through here.

use crate::target::Run;
use ferry_bus::messages::{NetworkMode as BusNetworkMode, WebhookCall};
use ferry_deploy::rendering::{self, SecretRefs, Variables};
use ferry_deploy::{Manifest, NetworkMode, Webhook};
use indexmap::IndexMap;
use std::collections::BTreeMap;

/// The variables every place of a target knows: application, deployment, target, account,
/// namespace, and once the target deployed its new ReplicaSet and preview addresses.
pub(crate) fn target_variables(run: &Run<'_>) -> Variables {
    let mut vars = Variables::default();
    vars.set("applicationName", run.ctx.plan.application.clone())
        .set("deploymentId", run.ctx.deployment.id.to_string())
        .set("environmentName", run.target.name.clone())
        .set("accountName", run.target.account.clone());
    let namespace = run
        .plan
        .namespace
        .clone()
        .or_else(|| (!run.target.namespace.is_empty()).then(|| run.target.namespace.clone()))
        .or_else(|| run.progress.workloads.first().map(|w| w.namespace.clone()));
    if let Some(ns) = namespace {
        vars.set("namespace", ns);
    }
    if let Some(w) = run.progress.workloads.first() {
        vars.set("replicaSetName", w.new_rs.clone());
    }
    for (service, preview) in &run.progress.preview {
        vars.set(&format!("preview.{service}"), preview.address.clone());
    }
    vars
}

/// The target's manifests rendered with the deployment context; the error names the manifest
/// and the variable, for the target's failure reason.
pub(crate) fn render_manifests(run: &Run<'_>) -> Result<Vec<Manifest>, String> {
    if let Some(url) = run.plan.remote_manifests.first() {
        // Deploying without them would silently leave part of the application out.
        return Err(format!(
            "manifest {url}: its contents were never fetched (svc-api fetches manifest URLs when \
             a deployment starts; this deployment was stored without them): start it again"
        ));
    }
    let mut vars = target_variables(run);
    // The ReplicaSet's name is made from the rendered template: it cannot appear in it.
    vars.ferry.shift_remove("replicaSetName");
    vars.context = run.ctx.plan.context.clone();
    run.plan
        .manifests
        .iter()
        .map(|m| {
            let mut vars = vars.clone();
            if let Some(ns) = &m.namespace {
                vars.set("namespace", ns.clone());
            }
            let object = rendering::render_value(&m.object, &vars, SecretRefs::Refuse)
                .map_err(|e| format!("manifest {} ({}/{}): {e}", m.source, m.kind, m.name))?;
            Ok(Manifest {
                object,
                ..m.clone()
            })
        })
        .collect()
}

/// The webhook call of a `runWebhook` step or gate, rendered; `callback_uri` is the single-use
/// address the remote system reports to (`None` when the webhook disables callbacks).
pub(crate) fn webhook_call(
    run: &Run<'_>,
    webhook: &Webhook,
    context: &IndexMap<String, String>,
    callback_uri: Option<&str>,
) -> Result<WebhookCall, String> {
    let mut vars = target_variables(run);
    vars.context = context.clone();
    if let Some(uri) = callback_uri {
        vars.set("callbackUri", uri);
    }
    let render = |what: &str, text: &str| {
        rendering::render(text, &vars, SecretRefs::Keep)
            .map_err(|e| format!("webhook {:?} {what}: {e}", webhook.name))
    };
    let headers = webhook
        .headers
        .iter()
        .map(|h| {
            Ok((
                h.key.clone(),
                render(&format!("header {}", h.key), &h.value)?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let network_mode = match webhook.network_mode {
        NetworkMode::Direct => BusNetworkMode::Direct,
        NetworkMode::RemoteNetworkAgent => BusNetworkMode::RemoteNetworkAgent,
    };
    Ok(WebhookCall {
        method: webhook.method.clone(),
        uri: render("uriTemplate", &webhook.uri_template)?,
        headers,
        body: webhook
            .body_template
            .as_deref()
            .map(|b| render("bodyTemplate", b))
            .transpose()?,
        agent_identifier: (network_mode == BusNetworkMode::RemoteNetworkAgent).then(|| {
            webhook
                .agent_identifier
                .clone()
                .unwrap_or_else(|| run.target.account.clone())
        }),
        network_mode,
        retry_count: webhook.retry_count,
        callback_uri: callback_uri.map(str::to_string),
    })
}

/// The secrets a webhook call refers to, for the engine to check they exist.
pub(crate) fn secrets_of(call: &WebhookCall) -> Vec<String> {
    let mut texts: Vec<&str> = vec![&call.uri];
    texts.extend(call.headers.iter().map(|(_, v)| v.as_str()));
    texts.extend(call.body.as_deref());
    let mut names: Vec<String> = Vec::new();
    for text in texts {
        for name in rendering::secret_names(text) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

/// The variables sent with an analysis request (the time window is svc-canary's to add).
pub(crate) fn analysis_variables(run: &Run<'_>) -> BTreeMap<String, String> {
    let mut vars = target_variables(run);
    let baseline = crate::baseline::needed(run.plan)
        .then(|| {
            run.progress
                .workloads
                .first()
                .and_then(crate::baseline::name)
        })
        .flatten();
    if let Some(name) = baseline {
        vars.set("baselineReplicaSetName", name);
    }
    vars.ferry.into_iter().collect()
}

/// An ordered context as the sorted map messages carry.
pub(crate) fn context_map(context: &IndexMap<String, String>) -> BTreeMap<String, String> {
    context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
