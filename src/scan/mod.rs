//! Incremental parsers that run over body frames as they pass: the JSON scanner the API readers
//! use, and the server-sent-events parser that splits streams into events. Public so that readers
//! of one's own API family ([`LlmApi`](crate::api::LlmApi)) can use them too.

pub mod json;
