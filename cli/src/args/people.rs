//! The `users` and `roles` command groups: a tenant's people and its roles (Tenant Admin).

use clap::{Args, Subcommand, ValueEnum};

/// `ferry users …`.
#[derive(Debug, Args)]
pub(crate) struct UsersArgs {
    /// The users subcommand.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// `ferry users` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// List the tenant's users and their roles.
    #[command(alias = "list")]
    Ls,
    /// Invite a person (creating the user), or replace a user's roles.
    #[command(alias = "invite")]
    Set {
        /// The person's email.
        email: String,
        /// A role to hold (repeat for several); none leaves only what provider groups give.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// A display name, set when the user is invited.
        #[arg(long)]
        name: Option<String>,
    },
    /// Remove a user: the person can no longer reach the tenant.
    Rm {
        /// The person's email.
        email: String,
    },
}

/// `ferry roles …`.
#[derive(Debug, Args)]
pub(crate) struct RolesArgs {
    /// The roles subcommand.
    #[command(subcommand)]
    pub command: RolesCommand,
}

/// Who a role is given to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MemberKind {
    /// A person (by user id, see `ferry users ls -o json`).
    User,
    /// A machine credential (by id, see `ferry creds ls`).
    Credential,
}

/// `ferry roles` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RolesCommand {
    /// List the tenant's roles and what they grant.
    #[command(alias = "list")]
    Ls,
    /// Create a custom role (e.g. one a deploy file's `requiresRoles` names).
    Create {
        /// The role's name, as deploy files write it.
        name: String,
        /// A permission it grants (repeat for several).
        #[arg(long = "grant", value_name = "PERMISSION")]
        grants: Vec<String>,
    },
    /// Give the role to a user or credential.
    Add {
        /// The role's name.
        name: String,
        /// What kind of member.
        #[arg(long, value_enum)]
        kind: MemberKind,
        /// The member's id.
        #[arg(long)]
        id: String,
    },
    /// Take the role away from a user or credential.
    Remove {
        /// The role's name.
        name: String,
        /// What kind of member.
        #[arg(long, value_enum)]
        kind: MemberKind,
        /// The member's id.
        #[arg(long)]
        id: String,
    },
}
