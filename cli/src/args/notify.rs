//! The `ferry notifications` group: where the tenant's deployment events are sent.

use clap::{Args, Subcommand, ValueEnum};

/// `ferry notifications …`.
#[derive(Debug, Args)]
pub(crate) struct NotificationsArgs {
    /// The notifications subcommand.
    #[command(subcommand)]
    pub command: NotificationsCommand,
}

/// An endpoint's body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum EndpointKind {
    /// Slack-compatible incoming-webhook JSON (`{"text": …}`).
    Slack,
    /// Ferry's JSON, signed with HMAC-SHA256 in `Ferry-Signature`.
    Generic,
}

/// `ferry notifications` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum NotificationsCommand {
    /// List the tenant's notification endpoints.
    #[command(alias = "list")]
    Ls,
    /// Register an endpoint (Tenant Admin).
    Add {
        /// A name, unique in the tenant (a-z, 0-9, '-').
        name: String,
        /// The body's format.
        #[arg(long, value_enum)]
        kind: EndpointKind,
        /// Where to POST.
        #[arg(long)]
        url: String,
        /// Events: started, waiting_for_approval, succeeded, failed, rolled_back
        /// (comma-separated or repeated).
        #[arg(long = "event", value_delimiter = ',', required = true)]
        events: Vec<String>,
        /// For `generic`: the tenant secret whose value keys the signature.
        #[arg(long)]
        signing_secret: Option<String>,
    },
    /// Remove an endpoint (Tenant Admin).
    #[command(alias = "delete")]
    Rm {
        /// The endpoint's name.
        name: String,
    },
}
