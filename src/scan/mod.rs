//! Incremental parsers that run over body frames as they pass.

pub(crate) mod json;
pub(crate) mod sse;
