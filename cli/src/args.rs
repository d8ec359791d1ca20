//! The command-line grammar (clap derive): the global connection and output options, and one
//! variant of [`Command`] per command group. The `deploy` group lives in [`deploy`].

pub(crate) mod analysis;
pub(crate) mod deploy;
pub(crate) mod notify;
pub(crate) mod people;
pub(crate) mod template;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use deploy::{
    AbortArgs, DecideArgs, DeployArgs, DeployCommand, HistoryArgs, ListArgs, RedeployArgs,
    RollbackArgs, StartArgs, StatusArgs, TargetArgs, UndoArgs, ValidateArgs, WatchArgs,
};

/// Ferry: continuous deployment as a service.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, after_help = crate::exit::HELP)]
pub(crate) struct Cli {
    /// Where and how to reach the API, and how to print.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts. Flags win over environment variables, which win over the
/// credentials file that `ferry login` writes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// The Ferry API's base URL (default: the credentials file's, else http://127.0.0.1:8080).
    #[arg(long, env = "FERRY_API", global = true, value_name = "URL")]
    pub api: Option<String>,
    /// OAuth2 client id of a machine credential.
    #[arg(long, env = "FERRY_CLIENT_ID", global = true, value_name = "ID")]
    pub client_id: Option<String>,
    /// OAuth2 client secret of that credential.
    #[arg(
        long,
        env = "FERRY_CLIENT_SECRET",
        global = true,
        value_name = "SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub client_secret: Option<String>,
    /// A bearer token for the API (instead of client credentials).
    #[arg(
        long,
        env = "FERRY_TOKEN",
        global = true,
        value_name = "TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,
    /// The context of the credentials file to use (default: its current one).
    #[arg(long, env = "FERRY_CONTEXT", global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The tenant (slug) a person's requests are for, sent as `X-Ferry-Tenant` (default: the
    /// context's).
    #[arg(long, env = "FERRY_TENANT", global = true, value_name = "SLUG")]
    pub tenant: Option<String>,
    /// How to print data.
    #[arg(
        short = 'o',
        long,
        env = "FERRY_OUTPUT",
        global = true,
        value_enum,
        default_value_t = Format::Text
    )]
    pub output: Format,
}

/// Output format of commands that print data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Tidy tables and sentences for people.
    Text,
    /// The API's JSON, pretty-printed.
    Json,
    /// The API's JSON as YAML.
    Yaml,
}

/// Top-level command groups.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Sign in: as a person in the browser (the device flow, the default), or save a machine
    /// credential (--client-id/--client-secret) or a token for later commands.
    Login(LoginArgs),
    /// Forget the context's tokens (revoking a person's sign-in at its issuer).
    Logout,
    /// Named contexts of the credentials file: several APIs or tenants.
    #[command(alias = "contexts")]
    Context(ContextArgs),
    /// Show who the API takes you for: tenant, subject and roles.
    Whoami,
    /// Work with deployments and deploy files.
    Deploy(DeployArgs),
    /// The tenant's agents and their connection state.
    Agents(AgentsArgs),
    /// Machine credentials of the tenant.
    Creds(CredsArgs),
    /// Tenant secrets (`{{secrets.NAME}}` in deploy files).
    Secrets(SecretsArgs),
    /// Tenants: yours, or your organization's (Organization Admin).
    #[command(alias = "tenant")]
    Tenants(TenantsArgs),
    /// The tenant's audit log: who did what (Tenant Admin).
    Audit(AuditArgs),
    /// People of the tenant and their roles (Tenant Admin).
    Users(people::UsersArgs),
    /// The tenant's roles and who holds them (Tenant Admin).
    Roles(people::RolesArgs),
    /// Canary analysis: compare two samples offline with Ferry's judge.
    Analysis(analysis::AnalysisArgs),
    /// Where the tenant's deployment events are sent (Slack or signed JSON endpoints).
    #[command(alias = "notification")]
    Notifications(notify::NotificationsArgs),
    /// Print the deploy file's JSON Schema (editors use it; the API serves it at
    /// `/v1/schema/deploy.json`).
    Schema,
    /// Print a commented starting deploy file: `ferry template canary --features manual,automated`.
    Template(template::TemplateArgs),
    /// Print a static shell completion script. For completion of deployment ids and target
    /// names from the API, register `source <(COMPLETE=bash ferry)` instead (zsh, fish, elvish
    /// and powershell likewise).
    Completions(CompletionsArgs),
}

/// `ferry login`.
#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Read the client secret from standard input (when not given by flag or environment).
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Sign in as a person with the device flow (the default without a client id or token).
    #[arg(long, conflicts_with = "client_secret_stdin")]
    pub device: bool,
    /// The issuer to sign in with (default: the first the API names, an external one before
    /// the API's own).
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
}

/// `ferry context …`.
#[derive(Debug, Args)]
pub(crate) struct ContextArgs {
    /// The context subcommand.
    #[command(subcommand)]
    pub command: ContextCommand,
}

/// `ferry context` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ContextCommand {
    /// List the contexts (the current one marked).
    #[command(alias = "list")]
    Ls,
    /// Make NAME the current context.
    Use {
        /// The context's name.
        name: String,
    },
    /// Remove NAME (and its tokens) from the credentials file.
    #[command(alias = "delete")]
    Rm {
        /// The context's name.
        name: String,
    },
}

/// `ferry agents …`.
#[derive(Debug, Args)]
pub(crate) struct AgentsArgs {
    /// The agents subcommand.
    #[command(subcommand)]
    pub command: AgentsCommand,
}

/// `ferry agents` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AgentsCommand {
    /// List the agents.
    #[command(alias = "list")]
    Ls,
}

/// `ferry creds …`.
#[derive(Debug, Args)]
pub(crate) struct CredsArgs {
    /// The credentials subcommand.
    #[command(subcommand)]
    pub command: CredsCommand,
}

/// `ferry creds` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CredsCommand {
    /// Create a credential; its secret is shown this once.
    Create {
        /// A name, unique in the tenant.
        name: String,
        /// Roles bound to it (repeatable or comma-separated).
        #[arg(
            long = "role",
            value_name = "ROLE",
            value_delimiter = ',',
            required = true
        )]
        roles: Vec<String>,
    },
    /// List credentials (never their secrets).
    #[command(alias = "list")]
    Ls,
    /// Revoke a credential by id.
    #[command(alias = "revoke")]
    Rm {
        /// The credential's id.
        id: String,
    },
}

/// `ferry tenants …`.
#[derive(Debug, Args)]
pub(crate) struct TenantsArgs {
    /// The tenants subcommand (default: `ls`).
    #[command(subcommand)]
    pub command: Option<TenantsCommand>,
}

/// `ferry tenants` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TenantsCommand {
    /// The tenants you may see: your organization's for an Organization Admin, else your own.
    #[command(alias = "list")]
    Ls,
    /// The tenant your credential belongs to.
    Current,
    /// Create a tenant in your organization (Organization Admin), inviting its administrators.
    Create {
        /// URL-safe short name: `[a-z0-9-]`, at most 63 characters.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// People invited as the tenant's Tenant Admins (repeatable or comma-separated).
        #[arg(long = "admin-email", value_name = "EMAIL", value_delimiter = ',')]
        admin_emails: Vec<String>,
    },
}

/// `ferry secrets …`.
#[derive(Debug, Args)]
pub(crate) struct SecretsArgs {
    /// The secrets subcommand.
    #[command(subcommand)]
    pub command: SecretsCommand,
}

/// `ferry secrets` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SecretsCommand {
    /// Set or replace a secret; the value comes from `--value` or standard input.
    Set {
        /// The secret's name.
        name: String,
        /// The value (else read from standard input, one trailing newline removed).
        #[arg(long, allow_hyphen_values = true)]
        value: Option<String>,
    },
    /// List secret names and dates (never values).
    #[command(alias = "list")]
    Ls,
    /// Delete a secret.
    #[command(alias = "delete")]
    Rm {
        /// The secret's name.
        name: String,
    },
}

/// `ferry completions`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn secrets_may_start_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "ferry",
            "login",
            "--client-id",
            "c",
            "--client-secret",
            "-bX_9",
            "--token",
            "-t",
        ])
        .unwrap();
        assert_eq!(cli.global.client_secret.as_deref(), Some("-bX_9"));
        assert_eq!(cli.global.token.as_deref(), Some("-t"));
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from([
            "ferry",
            "creds",
            "create",
            "ci",
            "--role",
            "Deployer,Viewer",
            "-o",
            "json",
            "--api",
            "http://x",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.api.as_deref(), Some("http://x"));
        let Command::Creds(CredsArgs {
            command: CredsCommand::Create { name, roles },
        }) = cli.command
        else {
            panic!("parsed as creds create");
        };
        assert_eq!(name, "ci");
        assert_eq!(roles, ["Deployer", "Viewer"]);
    }
}

/// `ferry audit …`.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The audit subcommand.
    #[command(subcommand)]
    pub command: AuditCommand,
}

/// `ferry audit` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum AuditCommand {
    /// List entries, newest first.
    #[command(alias = "ls")]
    List(AuditListArgs),
}

/// `ferry audit list`.
#[derive(Debug, Args)]
pub(crate) struct AuditListArgs {
    /// Only this actor (a user id, a credential id, or a service).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only this action, or every action under a prefix ending in `.` (`credential.`).
    #[arg(long)]
    pub action: Option<String>,
    /// Only this kind of resource (`credential`, `deployment`, …).
    #[arg(long)]
    pub resource_kind: Option<String>,
    /// Only this resource id.
    #[arg(long)]
    pub resource_id: Option<String>,
    /// At or after this instant (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this instant (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Entries per page (1 to 200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=200))]
    pub limit: i64,
    /// Follow every page.
    #[arg(long)]
    pub all: bool,
}
