//! ferry-proto: the agent protocol (`proto/agent.proto`, package `ferry.agent.v1`) with its
//! tonic client and server, and the hub's bus messages (`proto/tunnel.proto`, package
//! `ferry.tunnel.v1`) exchanged between callers and hub replicas over RabbitMQ.
//!
//! Protocol evolution is additive only (see the header of `agent.proto`); [`PROTOCOL_VERSION`]
//! is the revision this build speaks and [`MIN_PROTOCOL_VERSION`] the oldest a hub accepts.

/// Generated code, nested as the protobuf packages are so cross-package references resolve.
mod generated {
    pub(crate) mod ferry {
        pub(crate) mod agent {
            pub mod v1 {
                #![allow(clippy::all, missing_docs)]
                tonic::include_proto!("ferry.agent.v1");
            }
        }
        pub(crate) mod tunnel {
            pub mod v1 {
                #![allow(clippy::all, missing_docs)]
                tonic::include_proto!("ferry.tunnel.v1");
            }
        }
    }
}

/// `ferry.agent.v1`: the stream messages, `agent_hub_client` and `agent_hub_server`.
pub use generated::ferry::agent::v1 as agent;
/// `ferry.tunnel.v1`: the messages callers and hub replicas exchange over RabbitMQ.
pub use generated::ferry::tunnel::v1 as tunnel;

/// The protocol revision this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// The oldest protocol revision a hub of this build still serves.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// The largest body chunk either side puts in one message: big enough to amortise framing,
/// small enough that a stream buffers little (a few chunks) at any time.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;

/// The metadata key that carries the bearer token on `Tunnel`.
pub const AUTHORIZATION: &str = "authorization";
