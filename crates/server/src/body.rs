//! Reading a request body under the server's limits: at most `max_bytes`, within a deadline,
//! and a clean error when the client goes away half-way.

use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use tokio::time::{timeout_at, Instant};

use crate::error::{ApiError, ErrorKind};

/// After a body is found too large, up to this many more bytes are read and thrown away (for at
/// most [`DRAIN_TIME`]) before the 413 goes out. A server that answers and closes while the
/// client is still sending makes the client's TCP stack see a reset, and the client then often
/// loses the 413 itself; reading the rest first (what nginx calls lingering close) lets an honest
/// client that sent a somewhat large batch see why it failed. A body declared larger than the
/// limit plus this allowance is refused at once, without reading it.
pub const DRAIN_BYTES: u64 = 64 << 20;
pub const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Reads the whole body. `declared` is the Content-Length, if the client sent one.
pub async fn read_body(
    mut body: Body,
    declared: Option<u64>,
    max_bytes: usize,
    deadline: Instant,
) -> Result<Bytes, ApiError> {
    let max = max_bytes as u64;
    let too_large = |seen: u64, exact: bool| {
        ApiError::new(
            ErrorKind::BodyTooLarge,
            format!(
                "request body of {}{seen} bytes exceeds the limit of {max} bytes (server option \
                 --max-body-bytes); send smaller batches",
                if exact { "" } else { "more than " }
            ),
        )
    };
    if let Some(n) = declared {
        if n > max.saturating_add(DRAIN_BYTES) {
            return Err(too_large(n, true));
        }
    }
    // Reserve what the client declared (never more than the limit) to avoid regrowing.
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max) as usize);
    let mut total: u64 = 0;
    let mut draining_until: Option<Instant> = None;
    let mut complete = false;
    loop {
        let until = draining_until.unwrap_or(deadline);
        let frame = match timeout_at(until, body.frame()).await {
            Ok(None) => {
                complete = true;
                break;
            }
            Ok(Some(Ok(frame))) => frame,
            // Once the answer is 413 anyway, a slow or broken rest of the body does not matter.
            Err(_) | Ok(Some(Err(_))) if draining_until.is_some() => break,
            Err(_) => {
                return Err(ApiError::new(
                    ErrorKind::ReadTimeout,
                    format!(
                        "the request body was not received in time ({total} bytes arrived); \
                         server option --read-timeout"
                    ),
                ))
            }
            Ok(Some(Err(e))) => {
                return Err(ApiError::new(
                    ErrorKind::BodyRead,
                    format!("cannot read the request body after {total} bytes: {e}"),
                ))
            }
        };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total += data.len() as u64;
        if draining_until.is_some() {
            if total > max.saturating_add(DRAIN_BYTES) {
                break;
            }
            continue;
        }
        if total > max {
            buf = Vec::new();
            draining_until = Some(Instant::now() + DRAIN_TIME);
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if draining_until.is_some() {
        return Err(too_large(
            declared.unwrap_or(total),
            declared.is_some() || complete,
        ));
    }
    Ok(Bytes::from(buf))
}
