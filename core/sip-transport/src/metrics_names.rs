//! Metric names and recording helpers (the `metrics` facade; the core installs the exporter).

use crate::framing::FrameError;
use crate::Transport;

/// Counts a message handed to the handler: `sip_messages_total{transport}`.
pub(crate) fn message(transport: Transport) {
    metrics::counter!("sip_messages_total", "transport" => transport.as_str()).increment(1);
}

/// Counts a framing error: `sip_framing_errors_total{transport,kind}`.
pub(crate) fn framing_error(transport: Transport, error: &FrameError) {
    metrics::counter!("sip_framing_errors_total", "transport" => transport.as_str(), "kind" => error.kind())
        .increment(1);
}

/// Counts a message refused with 503 because too many handler calls were in flight:
/// `sip_overload_rejections_total{transport}`.
pub(crate) fn overload(transport: Transport) {
    metrics::counter!("sip_overload_rejections_total", "transport" => transport.as_str())
        .increment(1);
}
