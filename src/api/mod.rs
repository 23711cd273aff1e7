//! Which requests are LLM calls, and how each API family's bodies are read.
//!
//! [`recognize`] maps a method and URI to a [`Route`]: the family, the provider, the operation,
//! and what the path and query say (deployment, api-version). Each family lives in its own file
//! and supplies the scanner paths for its request and response and the assembler for its stream;
//! adding a family is adding a file and a line to [`recognize`].

use http::{Method, Uri};

use crate::ApiFamily;

pub(crate) mod openai;

/// What the layer knows about an exchange from its request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) family: ApiFamily,
    pub(crate) provider: &'static str,
    pub(crate) operation: &'static str,
    pub(crate) deployment: Option<String>,
    pub(crate) api_version: Option<String>,
}

/// The route of an LLM API request, or `None` for anything else.
pub(crate) fn recognize(method: &Method, uri: &Uri) -> Option<Route> {
    if method != Method::POST {
        return None;
    }
    let path = uri.path().trim_end_matches('/');
    let prefix = path.strip_suffix("/chat/completions")?;
    let (provider, deployment) = if let Some(rest) = prefix.strip_prefix("/openai/deployments/") {
        // Azure OpenAI: /openai/deployments/{deployment}/chat/completions
        if rest.is_empty() || rest.contains('/') {
            return None;
        }
        ("azure.ai.openai", Some(percent_decode(rest)))
    } else if prefix == "/openai" || prefix == "/openai/v1" {
        ("azure.ai.openai", None)
    } else if prefix.ends_with("/models") || prefix == "/models" {
        ("azure.ai.inference", None)
    } else {
        ("openai", None)
    };
    Some(Route {
        family: ApiFamily::ChatCompletions,
        provider,
        operation: "chat",
        deployment,
        api_version: query_param(uri, "api-version"),
    })
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name && !v.is_empty()).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes; anything malformed is kept as written.
fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: Method, uri: &str) -> Option<Route> {
        recognize(&method, &uri.parse().unwrap())
    }

    #[test]
    fn openai_and_compatible_paths() {
        let r = route(Method::POST, "/v1/chat/completions").unwrap();
        assert_eq!(
            (r.family, r.provider, r.operation),
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
        assert_eq!(
            route(
                Method::POST,
                "/models/chat/completions?api-version=2024-05-01-preview"
            )
            .unwrap(),
            Route {
                family: ApiFamily::ChatCompletions,
                provider: "azure.ai.inference",
                operation: "chat",
                deployment: None,
                api_version: Some("2024-05-01-preview".into()),
            }
        );
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
        assert_eq!(route(Method::POST, "/health"), None);
    }

    #[test]
    fn malformed_escapes_are_kept() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("a%zz%41"), "a%zzA");
    }
}
