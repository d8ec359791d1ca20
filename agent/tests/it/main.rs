//! Integration tests of ferry-agent against the real pieces in process: kube-sim (a Kubernetes
//! API simulator), the real hub on real Redis and RabbitMQ, the control plane's tunnel.

mod faults;
mod issuer;
mod kubernetes;
mod reconnect;
mod support;
mod token;
