//! The provider of an exchange, named as OpenTelemetry's `gen_ai.provider.name` names it.

use crate::ApiFamily;

/// Providers known by their API host: (host suffix, `gen_ai.provider.name`).
const HOSTS: &[(&str, &str)] = &[
    ("api.openai.com", "openai"),
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".inference.ai.azure.com", "azure.ai.inference"),
    (".models.ai.azure.com", "azure.ai.inference"),
    ("models.inference.ai.azure.com", "azure.ai.inference"),
    ("api.anthropic.com", "anthropic"),
    ("api.groq.com", "groq"),
    ("api.deepseek.com", "deepseek"),
    ("api.x.ai", "x_ai"),
    ("api.mistral.ai", "mistral_ai"),
    ("api.perplexity.ai", "perplexity"),
    ("api.cohere.com", "cohere"),
    ("api.cohere.ai", "cohere"),
    ("generativelanguage.googleapis.com", "gcp.gemini"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    ("-aiplatform.googleapis.com", "gcp.vertex_ai"),
    // Bedrock's runtime hosts only: other AWS names (load balancers, API Gateway) front anything.
    ("bedrock-runtime.", "aws.bedrock"),
    ("bedrock-runtime-fips.", "aws.bedrock"),
    (".ml.cloud.ibm.com", "ibm.watsonx.ai"),
];

/// The provider of a request: from its host when the host is a known provider's (client side, or
/// a `Host` header naming one), else from the path's shape (`/openai/...` is Azure OpenAI,
/// `/models/...` Azure AI Inference), else from the family (`anthropic` for Messages, `openai`
/// for the rest, as OpenAI-compatible servers speak OpenAI's API).
///
/// ```
/// use tower_llm_log::api::provider_for;
/// use tower_llm_log::ApiFamily;
///
/// let chat = ApiFamily::ChatCompletions;
/// assert_eq!(provider_for(Some("api.groq.com"), "/openai/v1/chat/completions", &chat), "groq");
/// assert_eq!(provider_for(None, "/openai/deployments/gpt-4o/chat/completions", &chat), "azure.ai.openai");
/// assert_eq!(provider_for(Some("localhost"), "/v1/chat/completions", &chat), "openai");
/// ```
pub fn provider_for(host: Option<&str>, path: &str, family: &ApiFamily) -> &'static str {
    if let Some(host) = host {
        let host = host.trim_end_matches('.');
        let known = HOSTS.iter().find(|(suffix, _)| {
            if suffix.ends_with('.') {
                host.len() > suffix.len()
                    && host.is_char_boundary(suffix.len())
                    && host[..suffix.len()].eq_ignore_ascii_case(suffix)
                    && ends_with_ignore_case(host, ".amazonaws.com")
            } else if suffix.starts_with(['.', '-']) {
                host.len() > suffix.len() && ends_with_ignore_case(host, suffix)
            } else {
                // The host itself, or a subdomain of it (no allocation: this runs per request).
                host.eq_ignore_ascii_case(suffix)
                    || (ends_with_ignore_case(host, suffix)
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.')
            }
        });
        if let Some((_, provider)) = known {
            // Azure AI Foundry serves OpenAI models under /openai on its inference hosts.
            if *provider == "azure.ai.inference" && path.contains("/openai/") {
                return "azure.ai.openai";
            }
            if *provider == "azure.ai.inference" && *family == ApiFamily::AnthropicMessages {
                return "anthropic";
            }
            return provider;
        }
    }
    match family {
        ApiFamily::AnthropicMessages => return "anthropic",
        ApiFamily::GeminiGenerateContent if path.contains("/publishers/google/") => return "gcp.vertex_ai",
        ApiFamily::GeminiGenerateContent => return "gcp.gemini",
        ApiFamily::BedrockConverse => return "aws.bedrock",
        ApiFamily::OllamaChat | ApiFamily::OllamaGenerate => return "ollama",
        _ => {}
    }
    if path.starts_with("/openai/") || path.contains("/openai/deployments/") {
        "azure.ai.openai"
    } else if path.starts_with("/models/") {
        "azure.ai.inference"
    } else {
        "openai"
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_providers() {
        let chat = ApiFamily::ChatCompletions;
        let p = |host: &str, path: &str| provider_for(Some(host), path, &chat);
        assert_eq!(p("API.OpenAI.com", "/v1/chat/completions"), "openai");
        assert_eq!(
            p("myres.openai.azure.com", "/openai/v1/chat/completions"),
            "azure.ai.openai"
        );
        assert_eq!(
            p("myres.services.ai.azure.com", "/models/chat/completions"),
            "azure.ai.inference"
        );
        assert_eq!(
            p("myres.services.ai.azure.com", "/openai/v1/responses"),
            "azure.ai.openai"
        );
        assert_eq!(p("bedrock-runtime.us-east-1.amazonaws.com", "/x"), "aws.bedrock");
        assert_eq!(
            p("my-lb-123.us-east-1.elb.amazonaws.com", "/v1/chat/completions"),
            "openai"
        );
        assert_eq!(
            p("res.services.ai.azure.com", "/api/projects/p1/openai/responses"),
            "azure.ai.openai"
        );
        assert_eq!(p("generativelanguage.googleapis.com", "/v1beta/x"), "gcp.gemini");
        assert_eq!(
            p("us-central1-aiplatform.googleapis.com", "/v1/x"),
            "gcp.vertex_ai"
        );
        assert_eq!(p("notapi.openai.com.evil", "/v1/chat/completions"), "openai");
        assert_eq!(p("evilapi.anthropic.com", "/v1/chat/completions"), "openai");
        assert_eq!(
            provider_for(
                Some("myres.services.ai.azure.com"),
                "/anthropic/v1/messages",
                &ApiFamily::AnthropicMessages
            ),
            "anthropic"
        );
    }
}
