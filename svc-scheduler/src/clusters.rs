//! The seam between the engine and the clusters it deploys to: a [`Clusters`] gives a
//! `kube::Client` for a tenant's account (the agent identifier of a target).
//!
//! In production the client tunnels every request through the agent hub ([`TunnelClusters`]);
//! tests hand out clients of a Kubernetes API simulator per account.

use async_trait::async_trait;
use ferry_store::TenantId;
use ferry_tunnel::AgentTunnel;

/// Why no client could be built for an account.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The account names no cluster this provider knows.
    #[error("no cluster for account {0:?}")]
    UnknownAccount(String),
    /// Building the client failed.
    #[error("building a Kubernetes client for account {account:?}: {source}")]
    Client {
        /// The account.
        account: String,
        /// What failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Gives Kubernetes clients for a tenant's accounts.
#[async_trait]
pub trait Clusters: Send + Sync + 'static {
    /// A client for the cluster of `account` (an agent identifier) of `tenant`.
    async fn client(&self, tenant: TenantId, account: &str) -> Result<kube::Client, ClusterError>;
}

/// Clusters reached through the agent hub: each request travels to the account's agent.
#[derive(Clone, Debug)]
pub struct TunnelClusters {
    tunnel: AgentTunnel,
}

impl TunnelClusters {
    /// Clusters behind `tunnel`.
    pub fn new(tunnel: AgentTunnel) -> TunnelClusters {
        TunnelClusters { tunnel }
    }
}

#[async_trait]
impl Clusters for TunnelClusters {
    async fn client(&self, tenant: TenantId, account: &str) -> Result<kube::Client, ClusterError> {
        Ok(self
            .tunnel
            .kube_client(tenant.to_string(), account, "default"))
    }
}
