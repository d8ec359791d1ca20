//! Integration tests: each test starts its own Kubernetes API simulator on port 0 and drives
//! it with kube-rs (typed `Api<T>`, `DynamicObject`, `kube::runtime::watcher`) and kubectl.

mod faults_auth;
mod journal;
mod kubectl;
mod typed;
mod util;
mod watcher;
