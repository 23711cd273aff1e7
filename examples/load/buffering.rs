//! The baseline the benchmarks and the load harness compare against: the logging middleware a
//! user would write by hand instead of this crate. It buffers the whole request and response
//! bodies, parses both with `serde_json::Value`, hands the prompt and completion to a sink, and
//! rebuilds the bodies. (It breaks streaming: a streamed response reaches the client only when it
//! has ended.)

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use tower::{Layer, Service};

/// What the baseline logs: the request's `messages` and the response as parsed.
pub type BufferedSink = dyn Fn(Value, Value) + Send + Sync;

/// The layer of [`Buffering`].
#[derive(Clone)]
pub struct BufferingLayer {
    sink: Arc<BufferedSink>,
}

impl BufferingLayer {
    pub fn new(sink: impl Fn(Value, Value) + Send + Sync + 'static) -> Self {
        BufferingLayer { sink: Arc::new(sink) }
    }
}

impl<S> Layer<S> for BufferingLayer {
    type Service = Buffering<S>;
    fn layer(&self, inner: S) -> Buffering<S> {
        Buffering {
            inner,
            sink: self.sink.clone(),
        }
    }
}

/// Buffers, parses and rebuilds both bodies around `inner`.
#[derive(Clone)]
pub struct Buffering<S> {
    inner: S,
    sink: Arc<BufferedSink>,
}

async fn read_all<B: Body<Data = Bytes>>(body: B) -> Bytes {
    body.collect().await.map(|c| c.to_bytes()).unwrap_or_default()
}

impl<S, B, RB> Service<Request<B>> for Buffering<S>
where
    S: Service<Request<Full<Bytes>>, Response = Response<RB>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    B: Body<Data = Bytes> + Send + 'static,
    RB: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The ready clone stays here; the one that was polled ready goes into the future.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sink = self.sink.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let bytes = read_all(body).await;
            let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let res = inner.call(Request::from_parts(parts, Full::new(bytes))).await?;
            let (parts, body) = res.into_parts();
            let bytes = read_all(body).await;
            let response: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            sink(request.get("messages").cloned().unwrap_or(Value::Null), response);
            Ok(Response::from_parts(parts, Full::new(bytes)))
        })
    }
}
