//! The charts and the image, checked against the code: rendered by Helm's engine with every
//! notable combination of values, every object validated against the Kubernetes schemas, the
//! settings and RBAC compared with what the binaries read and call.

mod agent;
mod control_plane;
mod dashboards;
mod image;
mod rbac;
mod support;
