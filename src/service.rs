//! [`LlmLog`]: the service the layer wraps around an inner service.

use std::fmt::Display;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower::Service;

use crate::api::RequestHead;
use crate::body::LlmLogBody;
use crate::control::{self, LogControl};
use crate::correlation::CorrelationId;
use crate::exchange::{Exchange, Shared};
use crate::future::{ReadingAhead, ResponseFuture};
use crate::tap::{PendingResponse, Tap};

/// Logs the LLM API exchanges that pass through it. Made by [`LlmLogLayer`](crate::LlmLogLayer).
///
/// Requests that are not LLM API calls pass through with their bodies wrapped but not tapped.
/// Errors of the inner service are passed through unchanged (and logged).
///
/// The inner service must be `Clone`: a recognised request's body is read ahead before the
/// inner service is called (see
/// [`LogConfigBuilder::request_read_ahead`](crate::LogConfigBuilder::request_read_ahead)), so the
/// instance made ready by `poll_ready` goes with the request and a clone takes its place, as
/// tower's own middleware do. Axum routers, hyper services and `tower::service_fn` are `Clone`;
/// anything else can be made so with `tower::buffer::Buffer`.
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
    S: Service<Request<LlmLogBody<ReqBody>>, Response = Response<ResBody>> + Clone,
    S::Error: Display,
    ReqBody: Body<Data = Bytes>,
    ReqBody::Error: Display,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<LlmLogBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody>;

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
            let mut req = req;
            // The client's log control header never goes further, logged or not.
            if req.headers().contains_key(&self.shared.config.log_control_header) {
                req.headers_mut().remove(&self.shared.config.log_control_header);
            }
            return ResponseFuture::called(self.inner.call(req.map(LlmLogBody::passthrough)), None);
        };
        let (mut parts, body) = req.into_parts();
        let id = CorrelationId::from_headers(&parts.headers, &self.shared.config.correlation_header);
        parts.extensions.insert(id.clone());
        let control = parts.extensions.get::<LogControl>().copied();
        let Some(plan) = control::plan(&self.shared.config, &mut parts.headers, control, id.as_str()) else {
            self.shared
                .stats
                .exchanges_not_logged
                .fetch_add(1, Ordering::Relaxed);
            let req = Request::from_parts(parts, LlmLogBody::passthrough(body));
            return ResponseFuture::called(self.inner.call(req), None);
        };
        let trace = crate::correlation::trace_parent(&parts.headers);
        let config = &self.shared.config;
        let dimensions = crate::attribution::collect(&parts, &config.dimensions, &config.fingerprint_key);
        let exchange = Arc::new(Exchange::new(
            self.shared.clone(),
            route,
            api,
            id,
            trace,
            plan,
            dimensions,
        ));
        exchange.add_header_dimensions(&parts.headers);
        let tap = Tap::request(exchange.clone(), &parts.headers);
        let pending = Some(PendingResponse::new(exchange));
        let read_ahead = self.shared.config.request_read_ahead;
        if read_ahead == 0 || body.is_end_stream() {
            let req = Request::from_parts(parts, LlmLogBody::tapped(body, Box::new(tap)));
            return ResponseFuture::called(self.inner.call(req), pending);
        }
        // tower's readiness contract: the instance `poll_ready` made ready serves this request
        // once its body is read; a clone takes its place for the next one.
        let clone = self.inner.clone();
        let service = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::reading_ahead(ReadingAhead::new(service, parts, body, tap, read_ahead), pending)
    }
}
