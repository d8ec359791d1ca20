//! Provider credentials: tenant secrets opened only when a query is about to be sent. The code
//! is shared with svc-webhook and svc-api in `ferry-outbound` ([`ferry_outbound::secrets`]).

pub use ferry_outbound::secrets::*;
