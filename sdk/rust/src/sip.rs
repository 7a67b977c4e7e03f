//! SIP frontend types. Mirrors the `sip-handler` interface: the core owns sockets and framing
//! and hands the plugin whole messages.

use serde::{Deserialize, Serialize};

use crate::types::host_types;

host_types! {
    /// Where a SIP message came from.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "host", component(record))]
    pub struct Origin {
        /// `udp`, `tcp` or `tls`.
        pub transport: String,
        /// Remote address, `ip:port`.
        pub peer: String,
        /// Local address the message arrived on.
        pub local: String,
        /// Id of the connection (stream transports), usable with
        /// [`crate::host::sip_transport::send_flow`] to reuse the flow (RFC 5626).
        pub flow: Option<u64>,
    }
}
