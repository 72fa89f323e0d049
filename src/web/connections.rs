//! What one client may hold of the server: a request's body must arrive within a deadline, and one
//! address may keep only so many connections open. Without them, a client sending bodies one byte
//! at a time held a connection (and a file descriptor) each for as long as it liked. Idle
//! connections and slow headers are already cut by actix (`client_request_timeout`, keep-alive:
//! see [`crate::http_server`]).

use std::{
    any::Any,
    cell::Cell,
    collections::HashMap,
    future::Future,
    io,
    net::IpAddr,
    pin::Pin,
    rc::Rc,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{Extensions, Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    middleware::Next,
    web::Bytes,
    Error, HttpMessage, HttpResponse,
};
use futures::Stream;
use tokio::time::Sleep;

/// Open connections per client address, shared by every worker of one server.
#[derive(Clone, Default)]
pub struct ConnectionCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection's place in [`ConnectionCounts`], kept in the connection's data and given back
/// when actix drops it (the connection closed).
struct ClientSlot {
    ip: IpAddr,
    over_cap: bool,
    counts: ConnectionCounts,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

impl ConnectionCounts {
    /// For `HttpServer::on_connect`: counts the new connection against its address, marking it
    /// when the address already holds `cap` (0: no cap).
    pub fn on_connect(&self, cap: usize, connection: &dyn Any, data: &mut Extensions) {
        let Some(ip) = connection
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|stream| stream.peer_addr().ok())
            .map(|addr| addr.ip())
        else {
            return;
        };
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_default();
        *n += 1;
        data.insert(ClientSlot {
            ip,
            over_cap: cap > 0 && *n > cap,
            counts: self.clone(),
        });
    }
}

/// Middleware: a connection beyond its address's cap is answered 429 at once and closed, its body
/// never read; every other request's body must arrive within `timeout` of its headers, or it is
/// answered 408 and the connection closed.
pub async fn limit_clients(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    if req
        .conn_data::<ClientSlot>()
        .is_some_and(|slot| slot.over_cap)
    {
        let response = HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "10"))
            .force_close()
            .body("too many connections from your address\n");
        return Ok(req.into_response(response).map_into_right_body());
    }
    let timed_out = Rc::new(Cell::new(false));
    let body = Deadline {
        inner: req.take_payload(),
        sleep: Box::pin(tokio::time::sleep(timeout)),
        timed_out: timed_out.clone(),
        finished: false,
    };
    req.set_payload(Payload::from(
        Box::pin(body) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let response = next.call(req).await?;
    if timed_out.get() {
        // Whatever the handler made of the cut body, the client hears why.
        let (req, _) = response.into_parts();
        let response = HttpResponse::RequestTimeout()
            .force_close()
            .body("the request body took too long to arrive\n");
        return Ok(ServiceResponse::new(req, response).map_into_right_body());
    }
    Ok(response.map_into_left_body())
}

/// A request body that fails with a timeout once its deadline passes before it ended.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    timed_out: Rc<Cell<bool>>,
    finished: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            if item.is_none() {
                this.finished = true;
            }
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.finished = true;
            this.timed_out.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "the request body took too long to arrive",
            )))));
        }
        Poll::Pending
    }
}
