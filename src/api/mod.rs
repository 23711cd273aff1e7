//! Which requests are LLM calls, and how each API family's bodies are read.
//!
//! An API family is an [`LlmApi`]: it recognizes its requests from the request head (method, URI,
//! headers) and makes the readers for their bodies. The built-in families, one file each:
//!
//! | family | paths | file |
//! |---|---|---|
//! | [`ApiFamily::ChatCompletions`] | `.../chat/completions` | `chat.rs` |
//! | [`ApiFamily::Responses`] | `/v1/responses`, Azure `/openai/responses`, `/openai/v1/responses` | `responses.rs` |
//! | [`ApiFamily::Embeddings`] | `.../embeddings` | `embeddings.rs` |
//! | [`ApiFamily::Completions`] | `.../completions` (not chat) | `completions.rs` |
//! | [`ApiFamily::AnthropicMessages`] | `.../v1/messages` | `anthropic.rs` |
//! | [`ApiFamily::GeminiGenerateContent`] | `.../models/{model}:generateContent`, `:streamGenerateContent` (Google AI, Vertex AI) | `gemini.rs` |
//! | [`ApiFamily::BedrockConverse`] | `/model/{modelId}/converse`, `/converse-stream` | `bedrock.rs` |
//! | [`ApiFamily::OllamaChat`], [`ApiFamily::OllamaGenerate`] | `/api/chat`, `/api/generate` | `ollama.rs` |
//! | [`ApiFamily::Mcp`] | `.../mcp` (`POST`, `GET`, `DELETE`; other paths with [`McpApi`]) | `mcp.rs` |
//!
//! The provider (`openai`, `azure.ai.openai`, `anthropic`, ...) comes from the host and the path;
//! see [`provider_for`].
//!
//! Users add families of their own with [`LlmLogLayer::with_api`](crate::LlmLogLayer::with_api),
//! and replace recognition with
//! [`LlmLogLayer::with_recognizer`](crate::LlmLogLayer::with_recognizer) (for example, to log a
//! chat API served under a path of one's own). `examples/custom_api` adds a family of one's
//! own.
//!
//! ```
//! use http::{HeaderMap, Method, Uri};
//! use tower_llm_log::api::{recognize, RequestHead};
//! use tower_llm_log::ApiFamily;
//!
//! let uri: Uri = "https://api.anthropic.com/v1/messages".parse().unwrap();
//! let headers = HeaderMap::new();
//! let route = recognize(&RequestHead::new(&Method::POST, &uri, &headers)).unwrap();
//! assert_eq!(route.family, ApiFamily::AnthropicMessages);
//! assert_eq!(route.provider, "anthropic");
//! ```

pub use crate::capture::{LoggedMessage, MessageCapture};
pub use crate::framing::{Framing, StreamEvent, HEAD_BYTES, TAIL_BYTES};
pub use crate::problem::{Problem, ProblemKind};
use crate::ApiFamily;

pub(crate) mod anthropic;
mod assemble;
mod bedrock;
pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
mod gemini;
mod head;
mod json_cursor;
mod mcp;
mod ollama;
mod openai;
mod provider;
mod reader;
mod registry;
pub(crate) mod responses;
mod scanned;

pub use anthropic::AnthropicMessagesApi;
pub(crate) use assemble::clip as clip_field;
pub use bedrock::BedrockConverseApi;
pub use chat::ChatCompletionsApi;
pub use completions::CompletionsApi;
pub use embeddings::EmbeddingsApi;
pub use gemini::GeminiApi;
#[cfg(test)]
use head::percent_decode;
pub use head::{recognize, RequestHead, Route};
pub use mcp::McpApi;
pub use ollama::OllamaApi;
pub use provider::provider_for;
pub(crate) use reader::RawReader;
pub use reader::{is_media_type, BodyFacts, BodyReader, Invocation, LlmApi, StreamReader, TokenUsage};
pub(crate) use registry::Apis;
pub use responses::ResponsesApi;

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HOST;
    use http::{HeaderMap, Method, Uri};

    fn route(method: Method, uri: &str) -> Option<Route> {
        let uri: Uri = uri.parse().unwrap();
        recognize(&RequestHead::new(&method, &uri, &HeaderMap::new()))
    }

    fn family_and_provider(uri: &str) -> Option<(ApiFamily, String)> {
        route(Method::POST, uri).map(|r| (r.family, r.provider.into_owned()))
    }

    #[test]
    fn openai_and_compatible_paths() {
        let r = route(Method::POST, "/v1/chat/completions").unwrap();
        assert_eq!(
            (r.family, r.provider.as_ref(), r.operation.as_ref()),
            (ApiFamily::ChatCompletions, "openai", "chat")
        );
        assert_eq!((r.deployment, r.api_version), (None, None));
        assert_eq!(
            route(Method::POST, "/chat/completions").unwrap().provider,
            "openai"
        );
        assert_eq!(
            route(Method::POST, "/api/v1/chat/completions/").unwrap().provider,
            "openai"
        );
        assert_eq!(
            route(Method::POST, "/openai/v1/chat/completions")
                .unwrap()
                .provider,
            "azure.ai.openai"
        );
        let r = route(
            Method::POST,
            "/models/chat/completions?api-version=2024-05-01-preview",
        )
        .unwrap();
        assert_eq!(r.provider, "azure.ai.inference");
        assert_eq!(r.api_version.as_deref(), Some("2024-05-01-preview"));
    }

    #[test]
    fn every_family_by_path() {
        use ApiFamily::*;
        let cases = [
            ("/v1/responses", Responses, "openai"),
            (
                "/openai/responses?api-version=2025-04-01-preview",
                Responses,
                "azure.ai.openai",
            ),
            ("/openai/v1/responses", Responses, "azure.ai.openai"),
            ("/v1/embeddings", Embeddings, "openai"),
            (
                "/openai/deployments/emb/embeddings",
                Embeddings,
                "azure.ai.openai",
            ),
            ("/v1/completions", Completions, "openai"),
            (
                "/openai/deployments/instruct/completions",
                Completions,
                "azure.ai.openai",
            ),
            ("/v1/messages", AnthropicMessages, "anthropic"),
            ("/anthropic/v1/messages", AnthropicMessages, "anthropic"),
            (
                "https://api.groq.com/openai/v1/chat/completions",
                ChatCompletions,
                "groq",
            ),
            (
                "https://api.deepseek.com/chat/completions",
                ChatCompletions,
                "deepseek",
            ),
            (
                "https://my.openai.azure.com/openai/v1/responses",
                Responses,
                "azure.ai.openai",
            ),
            ("https://api.mistral.ai/v1/embeddings", Embeddings, "mistral_ai"),
            ("https://api.x.ai/v1/messages", AnthropicMessages, "x_ai"),
        ];
        for (uri, family, provider) in cases {
            assert_eq!(
                family_and_provider(uri),
                Some((family, provider.to_string())),
                "{uri}"
            );
        }
        let r = route(Method::POST, "/v1/messages").unwrap();
        assert_eq!(r.operation, "chat");
        assert_eq!(
            route(Method::POST, "/v1/embeddings").unwrap().operation,
            "embeddings"
        );
        assert_eq!(
            route(Method::POST, "/v1/completions").unwrap().operation,
            "text_completion"
        );
    }

    #[test]
    fn the_host_header_names_the_provider_on_the_server_side() {
        let uri: Uri = "/v1/chat/completions".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(HOST, "api.anthropic.com:443".parse().unwrap());
        let head = RequestHead::new(&Method::POST, &uri, &headers);
        assert_eq!(head.host(), Some("api.anthropic.com"));
        assert_eq!(recognize(&head).unwrap().provider, "anthropic");
    }

    #[test]
    fn azure_deployment_and_api_version() {
        let r = route(
            Method::POST,
            "/openai/deployments/gpt-4o%20prod/chat/completions?x=1&api-version=2024-10-21",
        )
        .unwrap();
        assert_eq!(r.provider, "azure.ai.openai");
        assert_eq!(r.deployment.as_deref(), Some("gpt-4o prod"));
        assert_eq!(r.api_version.as_deref(), Some("2024-10-21"));
    }

    #[test]
    fn everything_else_passes() {
        assert_eq!(route(Method::GET, "/v1/chat/completions"), None);
        assert_eq!(route(Method::POST, "/v1/chat/completions/x"), None);
        assert_eq!(route(Method::POST, "/v1/models"), None);
        assert_eq!(route(Method::POST, "/openai/deployments//chat/completions"), None);
        assert_eq!(route(Method::POST, "/v1/messages/count_tokens"), None);
        assert_eq!(route(Method::POST, "/v1/responses/resp_1/cancel"), None);
        assert_eq!(route(Method::GET, "/v1/responses"), None);
        assert_eq!(route(Method::POST, "/health"), None);
        let tuned = route(Method::POST, "/v1beta/tunedModels/my-model-7:generateContent").unwrap();
        assert_eq!(
            (tuned.family, tuned.model.as_deref()),
            (ApiFamily::GeminiGenerateContent, Some("my-model-7"))
        );
        assert_eq!(
            route(Method::POST, "/v1beta/models/gemini-2.5-flash:countTokens"),
            None
        );
        assert_eq!(route(Method::POST, "/model/m/invoke"), None);
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz%41"), "a%zzA");
    }
}
