//! The `ferry-svc-api` binary: parses settings, then serves (see [`ferry_svc_api::run`]) or runs
//! a one-shot command such as `bootstrap` or `openapi`.

use anyhow::Context;
use clap::Parser;
use ferry_svc_api::settings::{Cli, Command};
use ferry_svc_api::{DEFAULT_ADMIN_ADDR, bootstrap, local_user, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Cli { settings, command } = Cli::parse();
    let _telemetry = ferry_runtime::telemetry::init(&settings.common, "ferry-svc-api")?;
    match command {
        Some(Command::Bootstrap(args)) => {
            let outcome = bootstrap(&settings, &args).await?;
            print!("{}", outcome.render(args.json));
            Ok(())
        }
        Some(Command::LocalUser(args)) => {
            let password = std::env::var("FERRY_LOCAL_USER_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty());
            let made = local_user(&settings, &args, password).await?;
            print!("{}", made.render(args.json));
            Ok(())
        }
        Some(Command::Openapi(args)) => {
            let document = ferry_svc_api::openapi::document_json()?;
            match &args.out {
                Some(path) => std::fs::write(path, document)
                    .with_context(|| format!("writing the OpenAPI document to {}", path.display())),
                None => {
                    print!("{document}");
                    Ok(())
                }
            }
        }
        None => {
            let admin_addr = settings.common.admin_addr_or(DEFAULT_ADMIN_ADDR);
            let admin = tokio::net::TcpListener::bind(admin_addr)
                .await
                .with_context(|| {
                    format!("binding the admin address {admin_addr} (FERRY_ADMIN_ADDR)")
                })?;
            let http_addr = settings.identity.http_addr;
            let http = tokio::net::TcpListener::bind(http_addr)
                .await
                .with_context(|| {
                    format!("binding the HTTP address {http_addr} (FERRY_HTTP_ADDR)")
                })?;
            run(settings, admin, http, ferry_runtime::shutdown::on_signals()).await
        }
    }
}
