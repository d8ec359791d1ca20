//! The page shell: head (stylesheet, htmx with eval and inline styles off, so the strict CSP
//! holds), the top bar with navigation, the tenant switcher and sign-out, and small shared
//! pieces (status badges, times, empty states).

use super::assets;
use super::session::Ui;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// htmx settings: no `eval`, no inline indicator styles (the CSP forbids both), no history
/// snapshots in local storage.
/// Refusals (4xx) are swapped like answers (the panel shows why) and are not script errors.
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"selfRequestsOnly":true,"responseHandling":[{"code":"204","swap":false},{"code":"[23]..","swap":true},{"code":"4..","swap":true,"error":false},{"code":"...","swap":false,"error":true}]}"#;

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        meta name="htmx-config" content=(HTMX_CONFIG);
        title { (title) " · Ferry" }
        link rel="icon" href="data:,";
        link rel="stylesheet" href={ "/ui/assets/" (assets::CSS) };
        script src={ "/ui/assets/" (assets::HTMX) } defer {}
        script src={ "/ui/assets/" (assets::HTMX_SSE) } defer {}
    }
}

/// A page without a signed-in person (sign-in, errors before a session).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header.top { a.brand href="/ui" { "Ferry" } }
                main.narrow #main { (body) }
            }
        }
    }
}

/// Which navigation entry a page belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nav {
    Deployments,
    Agents,
    Credentials,
    Secrets,
    Users,
    Providers,
}

/// A page of a signed-in person in a tenant.
pub fn page(ui: &Ui, nav: Nav, title: &str, body: Markup) -> Markup {
    let base = ui.base();
    let entries = [
        (Nav::Deployments, "deployments", "Deployments"),
        (Nav::Agents, "agents", "Agents"),
        (Nav::Credentials, "credentials", "Credentials"),
        (Nav::Secrets, "secrets", "Secrets"),
        (Nav::Users, "users", "Users & roles"),
        (Nav::Providers, "metric-providers", "Metric providers"),
    ];
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href={ (base) "/deployments" } { "Ferry" }
                    nav aria-label="Main" {
                        @for (entry, path, label) in entries {
                            a href={ (base) "/" (path) }
                                aria-current=[(entry == nav).then_some("page")] { (label) }
                        }
                    }
                    div.who {
                        @if ui.tenants.len() > 1 {
                            form method="get" action="/ui/tenants" {
                                label.visually-hidden for="tenant-switch" { "Tenant" }
                                select #tenant-switch name="go" {
                                    @for t in &ui.tenants {
                                        option value=(t.slug) selected[t.slug == ui.tenant] { (t.name) }
                                    }
                                }
                                " "
                                button type="submit" { "Switch" }
                            }
                        } @else {
                            span.muted title="Tenant" { (ui.tenant) }
                        }
                        span title="Signed in as" { (ui.principal.email.as_deref().unwrap_or("")) }
                        span.muted.hide-narrow { "(" (ui.principal.roles.join(", ")) ")" }
                        form method="post" action="/ui/sign-out" {
                            input type="hidden" name="_csrf" value=(ui.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    }
}

/// A status as a coloured badge (colour and text, never colour alone).
pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge s-" (status) } { (status.replace('_', " ")) } }
}

/// A time, machine-readable and as UTC text.
pub fn time(at: &DateTime<Utc>) -> Markup {
    html! { time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S UTC")) } }
}

/// An optional time, or a dash.
pub fn time_opt(at: Option<&DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// An empty state: what is missing and what to do about it.
pub fn empty(what: &str, hint: Markup) -> Markup {
    html! { div.empty { p { strong { (what) } } p { (hint) } } }
}
