//! [`ResponseFuture`]: what [`LlmLog`](crate::LlmLog) returns for a request: first the request
//! body read ahead (for a recognised LLM call), then the inner service's response, whose body it
//! wraps in a tap.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{request, HeaderValue, Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower::Service;

use crate::body::{LlmLogBody, Rest};
use crate::read_ahead::HeldFrames;
use crate::stream_usage;
use crate::tap::{PendingResponse, Tap};

pin_project! {
    /// The future of [`LlmLog`](crate::LlmLog)'s response: reads a recognised request's body
    /// ahead, calls the inner service, and wraps the response body in a tap when it arrives.
    /// Dropped before then (the client went away), it logs the exchange as disconnected.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<LlmLogBody<B>>>,
        B: Body,
    {
        #[pin]
        state: State<S, B>,
        pending: Option<PendingResponse>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<LlmLogBody<B>>>,
        B: Body,
    {
        // The request body is being read; the inner service is not called yet.
        ReadingAhead {
            reading: Option<ReadingAhead<S, B>>,
        },
        // The inner service was called.
        Called {
            #[pin]
            future: S::Future,
        },
    }
}

/// A request whose body is being read before the inner service (ready, and owned here) is
/// called.
pub(crate) struct ReadingAhead<S, B: Body> {
    service: S,
    parts: request::Parts,
    /// Boxed, so the body can be polled here and then moved into the request.
    body: Pin<Box<B>>,
    held: HeldFrames,
    /// Inline, not boxed: most bodies end during read-ahead, and then the tap has reported and
    /// goes no further (boxed only when the rest of the body streams past the bound).
    tap: Tap,
    limit: usize,
}

/// Why read-ahead stopped.
enum Stop<E> {
    /// The body ended.
    Ended,
    /// The body failed.
    Failed(E),
    /// The bound was reached; the rest streams.
    Bound,
}

impl<S, B> ReadingAhead<S, B>
where
    S: Service<Request<LlmLogBody<B>>>,
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    pub(crate) fn new(service: S, parts: request::Parts, body: B, mut tap: Tap, limit: usize) -> Self {
        tap.set_reading_ahead(true);
        ReadingAhead {
            service,
            parts,
            body: Box::pin(body),
            held: HeldFrames::default(),
            tap,
            limit,
        }
    }

    /// Reads frames until the body ends, fails, or the bound is reached. The tap sees each
    /// frame as it arrives, and reports the request at once when the body ends or fails.
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Stop<B::Error>> {
        while self.held.bytes() < self.limit {
            match ready!(self.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.tap.data(data);
                    }
                    self.held.push(frame);
                    if self.body.is_end_stream() {
                        self.tap.ended(true);
                        return Poll::Ready(Stop::Ended);
                    }
                }
                Some(Err(e)) => {
                    self.tap.failed(e.to_string());
                    return Poll::Ready(Stop::Failed(e));
                }
                None => {
                    self.tap.ended(true);
                    return Poll::Ready(Stop::Ended);
                }
            }
        }
        Poll::Ready(Stop::Bound)
    }

    /// Calls the inner service with the body: what was held, then the rest.
    fn call(self, stop: Stop<B::Error>) -> S::Future {
        let ReadingAhead {
            mut service,
            parts,
            body,
            held,
            mut tap,
            ..
        } = self;
        let mut held = held;
        let mut parts = parts;
        if matches!(stop, Stop::Ended)
            && tap.exchange().wants_stream_usage()
            && stream_usage::inject(&mut held, &mut parts.headers)
        {
            tap.exchange()
                .usage_injected
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let body = match stop {
            Stop::Ended => LlmLogBody::read_ahead(held, Rest::Ended, None),
            Stop::Failed(e) => LlmLogBody::read_ahead(held, Rest::Failed { error: Some(e), body }, None),
            Stop::Bound => {
                tap.set_reading_ahead(false);
                LlmLogBody::read_ahead(held, Rest::Open(body), Some(Box::new(tap)))
            }
        };
        service.call(Request::from_parts(parts, body))
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<LlmLogBody<B>>>,
    B: Body,
{
    pub(crate) fn called(future: S::Future, pending: Option<PendingResponse>) -> Self {
        ResponseFuture {
            state: State::Called { future },
            pending,
        }
    }

    pub(crate) fn reading_ahead(reading: ReadingAhead<S, B>, pending: Option<PendingResponse>) -> Self {
        ResponseFuture {
            state: State::ReadingAhead {
                reading: Some(reading),
            },
            pending,
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<LlmLogBody<B>>, Response = Response<ResBody>>,
    S::Error: Display,
    B: Body<Data = Bytes>,
    B::Error: Display,
    ResBody: Body<Data = Bytes>,
{
    type Output = Result<Response<LlmLogBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = loop {
            match this.state.as_mut().project() {
                StateProj::ReadingAhead { reading } => {
                    let stop = match reading.as_mut() {
                        Some(r) => ready!(r.poll_read(cx)),
                        // Only a future polled after it completed gets here.
                        None => return Poll::Pending,
                    };
                    let Some(r) = reading.take() else {
                        return Poll::Pending;
                    };
                    let future = r.call(stop);
                    this.state.set(State::Called { future });
                }
                StateProj::Called { future } => break ready!(future.poll(cx)),
            }
        };
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
                let strip = pending.exchange().is_some_and(|e| {
                    e.usage_injected.load(std::sync::atomic::Ordering::Relaxed)
                        && parts.status == http::StatusCode::OK
                        && parts
                            .headers
                            .get(http::header::CONTENT_TYPE)
                            .and_then(|v| v.to_str().ok())
                            .is_some_and(|v| {
                                v.trim_start()
                                    .to_ascii_lowercase()
                                    .starts_with("text/event-stream")
                            })
                        // A compressed stream cannot be edited as text: it passes as it is.
                        && parts
                            .headers
                            .get(http::header::CONTENT_ENCODING)
                            .is_none_or(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"))
                });
                if strip {
                    // Bytes are taken out: the length is no longer the upstream's.
                    parts.headers.remove(http::header::CONTENT_LENGTH);
                }
                let mut body = match pending.respond(parts.status.as_u16(), &parts.headers) {
                    Some(tap) => LlmLogBody::tapped(body, Box::new(tap)),
                    None => LlmLogBody::passthrough(body),
                };
                if strip {
                    body.strip_stream_usage();
                }
                Poll::Ready(Ok(Response::from_parts(parts, body)))
            }
            Err(e) => {
                pending.fail(e.to_string());
                Poll::Ready(Err(e))
            }
        }
    }
}
