//! [`Flows`]: the registry of open stream connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{FlowId, Transport};

/// Why [`Flows::send`] could not queue a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No open connection has this id: it was closed, or never existed.
    #[error("no open SIP connection has flow id {0} (it was closed, or never existed)")]
    UnknownFlow(FlowId),
    /// The connection's outbound queue is full: the peer is not reading fast enough.
    #[error("outbound queue of SIP flow {flow} is full ({capacity} messages waiting): the peer is not reading")]
    QueueFull {
        /// The flow.
        flow: FlowId,
        /// The queue's capacity.
        capacity: usize,
    },
}

/// What is known about an open flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowInfo {
    /// TCP or TLS.
    pub transport: Transport,
    /// The remote address.
    pub peer: SocketAddr,
    /// The local address.
    pub local: SocketAddr,
}

#[derive(Debug)]
struct Entry {
    info: FlowInfo,
    tx: mpsc::Sender<Bytes>,
}

/// The open stream connections (TCP, TLS), by [`FlowId`]: lets the SIP frontend send a
/// message on a client's existing connection (RFC 5626 flow reuse), e.g. a `MESSAGE` to a
/// registered client behind NAT.
///
/// Cheap to clone; clones share the registry. [`serve_stream`](crate::serve_stream) adds a
/// connection when it starts and removes it when it ends.
#[derive(Debug, Clone, Default)]
pub struct Flows {
    inner: Arc<Mutex<Table>>,
}

/// The registry proper: flows by id, and the newest flow by remote address (for
/// [`Flows::find`]).
#[derive(Debug, Default)]
struct Table {
    by_id: HashMap<FlowId, Entry>,
    by_peer: HashMap<(Transport, SocketAddr), FlowId>,
}

impl Flows {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, Table> {
        // No code panics while holding the lock; recover rather than propagate if one ever did.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message` (one complete SIP message) for sending on the connection `flow`.
    /// Never waits: fails with [`SendError::QueueFull`] when the peer is not keeping up, and
    /// with [`SendError::UnknownFlow`] when the connection is gone. Queued messages are
    /// written in order, between (never inside) the connection's own replies.
    pub fn send(&self, flow: FlowId, message: Bytes) -> Result<(), SendError> {
        let map = self.map();
        let entry = map.by_id.get(&flow).ok_or(SendError::UnknownFlow(flow))?;
        entry.tx.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::QueueFull {
                flow,
                capacity: entry.tx.max_capacity(),
            },
            mpsc::error::TrySendError::Closed(_) => SendError::UnknownFlow(flow),
        })
    }

    /// Transport and addresses of an open flow.
    pub fn info(&self, flow: FlowId) -> Option<FlowInfo> {
        self.map().by_id.get(&flow).map(|e| e.info)
    }

    /// The open flow over `transport` whose remote address is `peer` (the newest, should
    /// there be several), so a message for that address can reuse the connection the peer
    /// opened (RFC 5626 flow reuse; RFC 3261 §18.2.2 for responses).
    pub fn find(&self, transport: Transport, peer: SocketAddr) -> Option<FlowId> {
        self.map().by_peer.get(&(transport, peer)).copied()
    }

    /// Whether `flow` is open.
    pub fn contains(&self, flow: FlowId) -> bool {
        self.map().by_id.contains_key(&flow)
    }

    /// The number of open flows.
    pub fn len(&self) -> usize {
        self.map().by_id.len()
    }

    /// Whether no flow is open.
    pub fn is_empty(&self) -> bool {
        self.map().by_id.is_empty()
    }

    /// Registers a connection; it stays registered until the returned guard is dropped.
    pub(crate) fn register(&self, info: FlowInfo, tx: mpsc::Sender<Bytes>) -> Registration {
        let id = FlowId::next();
        let mut map = self.map();
        map.by_id.insert(id, Entry { info, tx });
        map.by_peer.insert((info.transport, info.peer), id);
        drop(map);
        Registration {
            flows: self.clone(),
            id,
        }
    }
}

/// Removes a flow from [`Flows`] when dropped (also when the connection task is cancelled or
/// its handler panics).
#[derive(Debug)]
pub(crate) struct Registration {
    flows: Flows,
    id: FlowId,
}

impl Registration {
    pub(crate) fn id(&self) -> FlowId {
        self.id
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.flows.map();
        if let Some(entry) = map.by_id.remove(&self.id) {
            let key = (entry.info.transport, entry.info.peer);
            // Only if no newer flow from the same address took the slot.
            if map.by_peer.get(&key) == Some(&self.id) {
                map.by_peer.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(transport: Transport, peer: &str) -> FlowInfo {
        FlowInfo {
            transport,
            peer: peer.parse().unwrap(),
            local: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    #[test]
    fn flows_are_found_by_remote_address_until_they_close() {
        let flows = Flows::new();
        let (tx, _rx) = mpsc::channel(1);
        let peer: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert_eq!(flows.find(Transport::Tcp, peer), None);
        let old = flows.register(info(Transport::Tcp, "192.0.2.1:40000"), tx.clone());
        assert_eq!(flows.find(Transport::Tcp, peer), Some(old.id()));
        // Per transport: a TLS flow from the same address is another flow.
        assert_eq!(flows.find(Transport::Tls, peer), None);
        // The newest flow from an address takes its slot; closing the older one keeps it.
        let new = flows.register(info(Transport::Tcp, "192.0.2.1:40000"), tx.clone());
        assert_eq!(flows.find(Transport::Tcp, peer), Some(new.id()));
        drop(old);
        assert_eq!(flows.find(Transport::Tcp, peer), Some(new.id()));
        let id = new.id();
        drop(new);
        assert_eq!(flows.find(Transport::Tcp, peer), None);
        assert_eq!(
            flows.send(id, Bytes::from_static(b"x")),
            Err(SendError::UnknownFlow(id))
        );
        assert!(flows.is_empty());
    }
}
