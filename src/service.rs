//! [`LlmLog`]: the service the layer wraps around an inner service, and its [`ResponseFuture`].

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use crate::api::RequestHead;
use crate::body::LlmLogBody;
use crate::correlation::CorrelationId;
use crate::exchange::{Exchange, Shared};
use crate::tap::{PendingResponse, RequestTap, Tap};

/// Logs the LLM API exchanges that pass through it. Made by [`LlmLogLayer`](crate::LlmLogLayer).
///
/// Requests that are not LLM API calls pass through with their bodies wrapped but not tapped.
/// Errors of the inner service are passed through unchanged (and logged).
#[derive(Clone)]
pub struct LlmLog<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> LlmLog<S> {
    pub(crate) fn new(inner: S, shared: Arc<Shared>) -> Self {
        LlmLog { inner, shared }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Drops the layer, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for LlmLog<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmLog")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for LlmLog<S>
where
    S: Service<Request<LlmLogBody<ReqBody>>, Response = Response<ResBody>>,
    S::Error: Display,
    ReqBody: Body<Data = Bytes>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<LlmLogBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let route = match self.shared.config.enabled {
            true => {
                let head = RequestHead::new(req.method(), req.uri(), req.headers());
                self.shared.apis.route(&head)
            }
            false => None,
        };
        let Some((route, api)) = route else {
            return ResponseFuture {
                inner: self.inner.call(req.map(LlmLogBody::passthrough)),
                pending: None,
            };
        };
        let (mut parts, body) = req.into_parts();
        let id = CorrelationId::from_headers(&parts.headers, &self.shared.config.correlation_header);
        parts.extensions.insert(id.clone());
        let trace = crate::correlation::trace_parent(&parts.headers);
        let exchange = Arc::new(Exchange::new(self.shared.clone(), route, api, id, trace));
        let tap = Tap::Request(RequestTap::new(exchange.clone(), &parts.headers));
        let req = Request::from_parts(parts, LlmLogBody::tapped(body, tap));
        ResponseFuture {
            inner: self.inner.call(req),
            pending: Some(PendingResponse::new(exchange)),
        }
    }
}

pin_project! {
    /// The future of [`LlmLog`]'s response: wraps the response body in a tap when it arrives.
    /// Dropped before then (the client went away), it logs the exchange as disconnected.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<PendingResponse>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: Display,
    ResBody: Body<Data = Bytes>,
{
    type Output = Result<Response<LlmLogBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(pending) = this.pending.take() else {
            return Poll::Ready(result.map(|res| res.map(LlmLogBody::passthrough)));
        };
        match result {
            Ok(res) => {
                let (mut parts, body) = res.into_parts();
                if let Some(exchange) = pending.exchange() {
                    if let Some(name) = &exchange.config().correlation_response_header {
                        if let Ok(value) = HeaderValue::from_str(exchange.correlation_id.as_str()) {
                            parts.headers.insert(name.clone(), value);
                        }
                    }
                }
                let body = match pending.respond(parts.status.as_u16(), &parts.headers) {
                    Some(tap) => LlmLogBody::tapped(body, Tap::Response(tap)),
                    None => LlmLogBody::passthrough(body),
                };
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                pending.fail(e.to_string());
                Poll::Ready(Err(e))
            }
        }
    }
}
