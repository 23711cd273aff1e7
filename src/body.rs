//! [`LlmLogBody`]: the body wrapper that taps frames as they pass.
//!
//! Every frame is returned to the caller exactly as the inner body produced it, in the same poll:
//! the tap only borrows a data frame's `Bytes` (slicing it is a reference count, not a copy).
//! The end of the body is seen either as `None` or as `is_end_stream()` turning true after a
//! frame, which is when hyper stops polling. In the second case records go out when the body is
//! dropped, so the last frame is not held up by logging.

use std::fmt::Display;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::tap::Tap;

pin_project! {
    /// A request or response body passing through the layer. Bodies of requests the layer does
    /// not log are wrapped too, with no tap: a single branch per frame.
    pub struct LlmLogBody<B> {
        #[pin]
        inner: B,
        tap: Option<Box<Tap>>,
    }
}

impl<B> LlmLogBody<B> {
    /// A body passed through untouched.
    pub(crate) fn passthrough(inner: B) -> Self {
        LlmLogBody { inner, tap: None }
    }

    pub(crate) fn tapped(inner: B, tap: Tap) -> Self
    where
        B: Body,
    {
        let mut tap = Box::new(tap);
        if inner.is_end_stream() {
            // An empty body is never polled; it has already ended.
            tap.ended(false);
        }
        LlmLogBody {
            inner,
            tap: Some(tap),
        }
    }

    /// The wrapped body. Any tap is dropped, reporting what it saw so far.
    pub fn into_inner(self) -> B {
        self.inner
    }
}

impl<B> std::fmt::Debug for LlmLogBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmLogBody")
            .field("tapped", &self.tap.is_some())
            .finish_non_exhaustive()
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
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        let Some(tap) = this.tap.as_deref_mut() else {
            return polled;
        };
        match &polled {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    tap.data(data);
                }
                if this.inner.is_end_stream() {
                    tap.ended(false);
                }
            }
            Poll::Ready(Some(Err(e))) => tap.failed(e.to_string()),
            Poll::Ready(None) => tap.ended(true),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
