//! ferry-chart-tests: checks that the Helm charts (`helm/ferry`, `helm/ferry-agent`), the
//! `Containerfile` and the image workflow agree with the code they deploy.
//!
//! The charts are rendered by Helm's own template engine and every object is validated against
//! the Kubernetes OpenAPI schemas ([`render`], through `render.py` beside this crate); the
//! settings each binary reads are found in its source ([`settings`]); the Kubernetes API calls
//! svc-scheduler makes through an agent are found in its source with `syn` ([`kube_calls`]), so
//! the agent's RBAC can be compared with them; the Grafana dashboards' PromQL is read for the
//! metric names it uses, to compare with the metrics the code exports ([`dashboards`]). The
//! tests themselves are in `tests/it`.

pub mod dashboards;
pub mod kube_calls;
pub mod render;
pub mod settings;
pub mod workspace;
