//! [`LlmLogBody`]: the body wrapper that taps frames as they pass.
//!
//! Every frame of a body the layer did not read ahead (every response body, and request bodies
//! with read-ahead off or past its bound) is returned to the caller exactly as the inner body
//! produced it, in the same poll: the tap only borrows a data frame's `Bytes` (slicing it is a
//! reference count, not a copy).
//! The end of the body is seen either as `None` or as `is_end_stream()` turning true after a
//! frame, which is when hyper stops polling. In the second case records go out when the body is
//! dropped, so the last frame is not held up by logging.
//!
//! A request body the layer read ahead (see
//! [`LogConfigBuilder::request_read_ahead`](crate::LogConfigBuilder::request_read_ahead)) first
//! hands on the frames it holds, already tapped, then what is left of the body: more frames
//! (tapped as they pass), its end, or the error it failed with.

use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::read_ahead::HeldFrames;
use crate::stream_usage::UsageStripper;
use crate::tap::Tap;

pin_project! {
    /// A request or response body passing through the layer. Bodies of requests the layer does
    /// not log are wrapped too, with no tap: a single branch per frame.
    pub struct LlmLogBody<B>
    where
        B: Body,
    {
        #[pin]
        source: Source<B>,
        tap: Option<Box<Tap>>,
        // The usage the layer asked for, taken back out of the stream the client receives.
        strip: Option<Box<UsageStripper>>,
    }
}

pin_project! {
    #[project = SourceProj]
    enum Source<B>
    where
        B: Body,
    {
        // The body as it was given.
        Direct {
            #[pin]
            body: B,
        },
        // A request body read ahead: the frames held, then what is left of the body.
        ReadAhead {
            held: HeldFrames,
            rest: Rest<B>,
        },
    }
}

/// What is left of a body after read-ahead.
pub(crate) enum Rest<B: Body> {
    /// More may come from the body (read-ahead stopped at its bound).
    Open(Pin<Box<B>>),
    /// The body ended during read-ahead.
    Ended,
    /// The body failed during read-ahead: its error is handed on after the held frames, and
    /// polls after that go to the body, as they would have without read-ahead.
    Failed {
        error: Option<B::Error>,
        body: Pin<Box<B>>,
    },
}

impl<B: Body> LlmLogBody<B> {
    /// A body passed through untouched.
    pub(crate) fn passthrough(body: B) -> Self {
        LlmLogBody {
            source: Source::Direct { body },
            tap: None,
            strip: None,
        }
    }

    pub(crate) fn tapped(body: B, tap: Box<Tap>) -> Self {
        let mut tap = tap;
        if body.is_end_stream() {
            // An empty body is never polled; it has already ended.
            tap.ended(false);
        }
        LlmLogBody {
            source: Source::Direct { body },
            tap: Some(tap),
            strip: None,
        }
    }

    /// A body read ahead: `held` first, then `rest`, with `tap` (if the body has not already
    /// reported) watching what comes after the held frames.
    pub(crate) fn read_ahead(held: HeldFrames, rest: Rest<B>, tap: Option<Box<Tap>>) -> Self {
        LlmLogBody {
            source: Source::ReadAhead { held, rest },
            tap,
            strip: None,
        }
    }

    /// Takes the usage chunk the layer asked for out of this (streamed response) body.
    pub(crate) fn strip_stream_usage(&mut self) {
        self.strip = Some(Box::default());
    }
}

impl<B: Body> std::fmt::Debug for LlmLogBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmLogBody")
            .field("tapped", &self.tap.is_some())
            .field("read_ahead", &matches!(self.source, Source::ReadAhead { .. }))
            .finish_non_exhaustive()
    }
}

/// Shows the tap what a poll of the body produced; `at_end` is the body's `is_end_stream()`
/// after it.
fn observe<E: Display>(
    tap: &mut Option<Box<Tap>>,
    polled: &Poll<Option<Result<Frame<Bytes>, E>>>,
    at_end: impl FnOnce() -> bool,
) {
    let Some(tap) = tap.as_deref_mut() else {
        return;
    };
    match polled {
        Poll::Pending => {}
        Poll::Ready(Some(Ok(frame))) => {
            if let Some(data) = frame.data_ref() {
                tap.data(data);
            }
            if at_end() {
                tap.ended(false);
            }
        }
        Poll::Ready(Some(Err(e))) => tap.failed(e.to_string()),
        Poll::Ready(None) => tap.ended(true),
    }
}

impl<B> Body for LlmLogBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Display,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        match this.source.project() {
            SourceProj::Direct { mut body } => {
                if let Some(strip) = this.strip.as_deref_mut() {
                    if let Some(trailers) = strip.pending.take() {
                        return Poll::Ready(Some(Ok(trailers)));
                    }
                    if strip.ended {
                        return Poll::Ready(None);
                    }
                    let polled = body.as_mut().poll_frame(cx);
                    observe(this.tap, &polled, || body.is_end_stream());
                    return match polled {
                        Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(match frame.into_data() {
                            Ok(data) => Frame::data(strip.filter(data)),
                            // What is held goes out first, the trailers on the next poll.
                            Err(trailers) if strip.is_holding() => {
                                strip.pending = Some(trailers);
                                Frame::data(strip.take_held())
                            }
                            Err(trailers) => trailers,
                        }))),
                        // What is still held goes out before the end.
                        Poll::Ready(None) if strip.is_holding() => {
                            Poll::Ready(Some(Ok(Frame::data(strip.finish()))))
                        }
                        Poll::Ready(None) => {
                            strip.ended = true;
                            Poll::Ready(None)
                        }
                        other => other,
                    };
                }
                let polled = body.as_mut().poll_frame(cx);
                observe(this.tap, &polled, || body.is_end_stream());
                polled
            }
            SourceProj::ReadAhead { held, rest } => {
                if let Some(frame) = held.pop() {
                    return Poll::Ready(Some(Ok(frame)));
                }
                match rest {
                    Rest::Open(body) => {
                        let polled = body.as_mut().poll_frame(cx);
                        observe(this.tap, &polled, || body.is_end_stream());
                        polled
                    }
                    Rest::Ended => Poll::Ready(None),
                    Rest::Failed { error, body } => match error.take() {
                        Some(e) => Poll::Ready(Some(Err(e))),
                        None => body.as_mut().poll_frame(cx),
                    },
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if let Some(strip) = &self.strip {
            if strip.ended {
                return true;
            }
            if strip.is_holding() || strip.pending.is_some() {
                return false;
            }
        }
        match &self.source {
            Source::Direct { body } => body.is_end_stream(),
            Source::ReadAhead { held, rest } => {
                held.is_empty()
                    && match rest {
                        Rest::Open(body) => body.is_end_stream(),
                        Rest::Ended => true,
                        Rest::Failed { error, body } => error.is_none() && body.is_end_stream(),
                    }
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.strip.is_some() {
            // Bytes are taken out: only that the body may be empty is known.
            return SizeHint::default();
        }
        match &self.source {
            Source::Direct { body } => body.size_hint(),
            Source::ReadAhead { held, rest } => {
                let held = held.bytes() as u64;
                match rest {
                    Rest::Open(body) => {
                        let inner = body.size_hint();
                        let mut hint = SizeHint::new();
                        hint.set_lower(inner.lower().saturating_add(held));
                        if let Some(upper) = inner.upper() {
                            hint.set_upper(upper.saturating_add(held));
                        }
                        hint
                    }
                    Rest::Ended | Rest::Failed { .. } => SizeHint::with_exact(held),
                }
            }
        }
    }
}
