//! Command implementations, one module per command group, and the context they share: the
//! output format and a lazily built API client (settings resolved from flags, environment and
//! the credentials file).

mod actions;
mod agents;
mod analysis;
mod audit;
mod contexts;
mod creds;
mod deploy;
mod deployments;
mod history;
mod login;
mod people;
mod schema;
mod secrets;
mod start;
mod template;
mod tenants;
mod validate;
mod webhooks;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::CommandFactory as _;

use crate::args::{Cli, Command, Format, GlobalArgs};
use crate::client::Client;
use crate::config::{self, Settings};

/// What every command may use.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The global options as parsed.
    pub global: GlobalArgs,
}

impl Ctx {
    /// The output format.
    pub(crate) fn format(&self) -> Format {
        self.global.output
    }

    /// A client for the configured API and credential.
    pub(crate) fn client(&self) -> anyhow::Result<Arc<Client>> {
        let g = &self.global;
        let complete = g.api.is_some() && (g.token.is_some() || g.client_id.is_some());
        // Flags and environment that say everything make the file irrelevant (even a broken one).
        let (stored, saved_at) = if complete {
            (None, None)
        } else {
            let path = config::credentials_path()?;
            match config::load(&path, g.context.as_deref())? {
                Some((context, stored)) => (Some(stored), Some(config::SavedAt { path, context })),
                None => (None, None),
            }
        };
        let settings = Settings::resolve(&self.global, stored.as_ref(), saved_at)?;
        Ok(Arc::new(Client::new(settings)?))
    }
}

/// Runs the parsed command; `Err` is an operational failure (printed by `main`), while a command
/// that ran and found problems returns its own exit code.
pub(crate) async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx { global: cli.global };
    match cli.command {
        Command::Login(args) => login::login(&ctx, &args).await,
        Command::Logout => login::logout(&ctx).await,
        Command::Context(args) => contexts::run(&ctx, args.command),
        Command::Whoami => login::whoami(&ctx).await,
        Command::Deploy(args) => deploy::run(&ctx, args.command).await,
        Command::Agents(args) => agents::run(&ctx, args.command).await,
        Command::Creds(args) => creds::run(&ctx, args.command).await,
        Command::Secrets(args) => secrets::run(&ctx, args.command).await,
        Command::Tenants(args) => tenants::run(&ctx, args.command).await,
        Command::Audit(args) => match args.command {
            crate::args::AuditCommand::List(list) => audit::list(&ctx, &list).await,
        },
        Command::Users(args) => people::users(&ctx, args.command).await,
        Command::Roles(args) => people::roles(&ctx, args.command).await,
        Command::Analysis(args) => analysis::run(&ctx, args.command).await,
        Command::Notifications(args) => webhooks::run(&ctx, args.command).await,
        Command::Schema => schema::run(ctx.format()),
        Command::Template(args) => template::run(&ctx, &args),
        Command::Completions(args) => {
            let mut command = Cli::command();
            clap_complete::generate(args.shell, &mut command, "ferry", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Reads all of standard input (for secrets), refusing an interactive terminal with no data.
pub(crate) fn read_stdin(what: &str) -> anyhow::Result<String> {
    use std::io::Read as _;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type the {what}, then Ctrl-D:");
    }
    let mut text = String::new();
    stdin
        .lock()
        .read_to_string(&mut text)
        .map_err(|e| anyhow::anyhow!("cannot read the {what} from standard input: {e}"))?;
    let text = text
        .strip_suffix('\n')
        .map_or(text.as_str(), |t| t.strip_suffix('\r').unwrap_or(t))
        .to_string();
    Ok(text)
}

/// Percent-encodes one URL path segment (ids and names typed by the user).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(super::segment("db-pass.v1"), "db-pass.v1");
        assert_eq!(super::segment("a/b c"), "a%2Fb%20c");
    }
}
