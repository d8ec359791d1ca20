//! `exposeServices`: a temporary preview Service per named Service, selecting only the new
//! version, its address recorded in the target's progress (`observed.preview`, shown by the
//! API) and a durable cleanup timer that deletes it when its time to live ends, even after the
//! deployment itself ended (cleanup timers outlive their deployment).

use crate::EngineError;
use crate::clusters::Clusters;
use crate::progress::Progress;
use crate::render::human_duration;
use crate::routing::{self, VersionLabel};
use crate::target::Run;
use crate::waits::Poll;
use chrono::{DateTime, Utc};
use ferry_store::TenantId;
use ferry_store::targets::Target;
use ferry_store::timers::{KIND_CLEANUP, NewTimer};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Label on a preview Service: the Service it previews.
pub const LABEL_PREVIEW_OF: &str = "ferry.dev/preview-of";

/// One published preview address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// The temporary Service Ferry created.
    pub service: String,
    /// Its namespace.
    pub namespace: String,
    /// Where the new version answers (`http://<service>.<namespace>.svc.cluster.local:<port>`).
    pub address: String,
    /// When the temporary Service is deleted.
    pub expires_at: DateTime<Utc>,
}

/// The temporary Service's name for `service`: `<service>-ferry-preview`, cut to a DNS label.
pub fn preview_name(service: &str) -> String {
    const SUFFIX: &str = "-ferry-preview";
    let keep = 63 - SUFFIX.len();
    let head: String = service.chars().take(keep).collect();
    format!("{}{SUFFIX}", head.trim_end_matches('-'))
}

/// The in-cluster address of Service `name` on its first port.
fn address(name: &str, namespace: &str, service: &serde_json::Value) -> String {
    let port = service["spec"]["ports"][0]["port"].as_i64().unwrap_or(80);
    format!("http://{name}.{namespace}.svc.cluster.local:{port}")
}

impl Run<'_> {
    /// Creates (once) a preview Service for each of `services`, selecting the new version for
    /// `ttl_secs`.
    pub(crate) async fn expose(
        &mut self,
        services: &[String],
        ttl_secs: u64,
    ) -> Result<Poll, EngineError> {
        let client = self.client().await?;
        let namespace = routing::namespace(self.plan);
        let mut published = Vec::new();
        for name in services {
            let Some(found) = routing::find_service(&client, self.plan, &namespace, name).await?
            else {
                return Ok(Poll::Failed(format!(
                    "exposeServices: Service {name:?} is neither among the target's manifests \
                     nor in namespace {namespace:?} of the cluster"
                )));
            };
            let selector = found.selector();
            let Some(index) = routing::workload_for(self.plan, &self.progress.workloads, &selector)
            else {
                return Ok(Poll::Failed(format!(
                    "exposeServices: Service {name:?} selects none of the target's Deployments"
                )));
            };
            let version = VersionLabel::of_new(&self.progress.workloads[index]);
            let preview = preview_name(name);
            let ns = found.object["metadata"]["namespace"]
                .as_str()
                .unwrap_or(&namespace)
                .to_string();
            let mut labels = routing::owned_labels(
                &self.ctx.plan.application,
                &self.target.name,
                &self.ctx.deployment.id.to_string(),
            );
            labels.insert(LABEL_PREVIEW_OF.into(), json!(name));
            routing::ensure_copy(&client, &found, &preview, &version, &labels).await?;
            let expires_at = match self.progress.preview.get(name) {
                Some(p) => p.expires_at,
                None => crate::waits::after(self.ctx.now, ttl_secs),
            };
            let link = Preview {
                address: address(&preview, &ns, &found.object),
                service: preview,
                namespace: ns,
                expires_at,
            };
            published.push(format!("{name} at {}", link.address));
            self.out.timers.push(NewTimer {
                target: Some(self.target.name.clone()),
                kind: KIND_CLEANUP.into(),
                key: format!("{}:preview:{name}", self.target.name),
                fire_at: expires_at,
                payload: json!({"service": link.service, "namespace": link.namespace}),
            });
            self.progress.preview.insert(name.clone(), link);
        }
        Ok(Poll::Done(format!(
            "preview {} for {}",
            published.join(", "),
            human_duration(ttl_secs)
        )))
    }

    /// Deletes preview Services whose time ran out (all of them with `all`) and forgets them.
    pub(crate) async fn remove_previews(
        &mut self,
        client: &kube::Client,
        all: bool,
    ) -> Result<(), EngineError> {
        let now = self.ctx.now;
        let due: Vec<String> = self
            .progress
            .preview
            .iter()
            .filter(|(_, p)| all || p.expires_at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for name in due {
            if let Some(p) = self.progress.preview.get(&name) {
                routing::delete_service(client, &p.namespace, &p.service).await?;
            }
            self.progress.preview.remove(&name);
        }
        Ok(())
    }

    /// On every reconcile of a running target: expired previews go.
    pub(crate) async fn expire_previews(&mut self) -> Result<(), EngineError> {
        let now = self.ctx.now;
        if !self.progress.preview.values().any(|p| p.expires_at <= now) {
            return Ok(());
        }
        let client = self.client().await?;
        self.remove_previews(&client, false).await
    }
}

/// Deletes the expired preview Services of targets no reconcile looks at any more (ended
/// targets, or every target of an ended deployment). Their rows keep the link with its expiry.
pub async fn remove_expired(
    clusters: &dyn Clusters,
    tenant: TenantId,
    rows: &[Target],
    now: DateTime<Utc>,
) -> Result<(), EngineError> {
    for row in rows {
        // An ended target whose record does not decode was failed with that reason already;
        // nothing it holds can be known, so there is nothing to remove.
        let progress = match Progress::decode(&row.observed) {
            Ok(progress) => progress,
            Err(e) => {
                tracing::error!(target = %row.name, error = %ferry_runtime::error_chain(&e),
                                "an ended target's stored state does not decode; previews kept");
                continue;
            }
        };
        let due: Vec<_> = progress
            .preview
            .values()
            .filter(|p| p.expires_at <= now)
            .collect();
        if due.is_empty() {
            continue;
        }
        let client = clusters
            .client(tenant, &row.account)
            .await
            .map_err(crate::cluster::KubeOpError::from)?;
        for p in due {
            routing::delete_service(&client, &p.namespace, &p.service).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_names_stay_dns_labels() {
        assert_eq!(preview_name("hello"), "hello-ferry-preview");
        let long = preview_name(&"a".repeat(70));
        assert_eq!(long.len(), 63);
        assert!(long.ends_with("-ferry-preview"));
        let svc = json!({"spec": {"ports": [{"port": 8080}]}});
        assert_eq!(
            address("x-ferry-preview", "web", &svc),
            "http://x-ferry-preview.web.svc.cluster.local:8080"
        );
    }
}
