//! Per-exchange state shared by the request and response taps, and the turning of what a side
//! saw into records.
//!
//! Each side (request, response) reports once, when its body ends, fails or is dropped; the
//! report is chunked and handed to the sink right there, on that task, under no lock.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;

use crate::api::{clip_field, Apis, BodyFacts, Invocation, LlmApi, Problem, ProblemKind, Route, TokenUsage};
use crate::attribution::ExchangeDimensions;
use crate::capture::LoggedMessage;
use crate::chunk::chunk_captured;
use crate::control::{ContentOmitted, ContentPlan};
use crate::correlation::CorrelationId;
use crate::privacy::{self, Edit, Redactor};
use crate::record::SideRecords;
pub(crate) use crate::stats::Counters;
use crate::{LlmLogRecord, LlmLogSink, LogConfig, Outcome, RecordKind};

/// What a layer and all its services share.
pub(crate) struct Shared {
    pub(crate) sink: Arc<dyn LlmLogSink>,
    pub(crate) config: LogConfig,
    pub(crate) stats: Arc<Counters>,
    pub(crate) apis: Apis,
    pub(crate) redactor: Option<Arc<dyn Redactor>>,
}

/// One request/response exchange being logged.
pub(crate) struct Exchange {
    pub(crate) shared: Arc<Shared>,
    pub(crate) route: Route,
    pub(crate) api: Arc<dyn LlmApi>,
    pub(crate) correlation_id: CorrelationId,
    pub(crate) time_generated: SystemTime,
    pub(crate) started: Instant,
    pub(crate) trace: Option<(String, String)>,
    /// Set when the request side reports; read by the response side for the model fallback
    /// (and the token estimate).
    pub(crate) request_facts: Mutex<Option<RequestFacts>>,
    /// What to log of this exchange's content.
    pub(crate) plan: ContentPlan,
    /// With content sampled out: the side that reported first, until the other says whether
    /// the exchange failed (and so keeps its content).
    waiting: Mutex<Option<(RecordKind, Outcome, SideReport)>>,
    /// Who made it: one map, shared by every record (the end user joins it when the request
    /// body has named one).
    dimensions: Mutex<Arc<BTreeMap<String, String>>>,
    /// An empty `202 Accepted` that came before the request side reported: whether it is
    /// logged depends on whether the request needed an answer.
    held_acknowledgement: Mutex<Option<(Outcome, SideReport)>>,
    /// The layer added `stream_options.include_usage` to the request: the usage it brings is
    /// taken back out of the response.
    pub(crate) usage_injected: std::sync::atomic::AtomicBool,
}

/// What the response side needs to know of the request.
#[derive(Debug, Default)]
pub(crate) struct RequestFacts {
    pub(crate) model: Option<String>,
    /// The request asked for a stream: its response is a streamed completion even when the
    /// upstream answered with an error body instead.
    pub(crate) stream: bool,
    /// The logged prompt, kept for the token estimate only.
    #[cfg_attr(not(feature = "tokenizer"), allow(dead_code))]
    pub(crate) prompt: Option<LoggedMessage>,
    /// The end user the request body names.
    pub(crate) end_user: Option<String>,
    /// The body was read without a problem (valid JSON, whole).
    pub(crate) json_ok: bool,
    /// What the request invokes (MCP's method and tool): the response's records say it too.
    pub(crate) invocation: Invocation,
    /// The request's id, for families whose response must answer it (JSON-RPC): as shown,
    /// and as written.
    pub(crate) request_id: Option<String>,
    pub(crate) raw_id: Option<String>,
    /// The request needs no response (a JSON-RPC notification).
    pub(crate) no_response_expected: bool,
}

/// What one side saw, ready to become records.
#[derive(Default)]
pub(crate) struct SideReport {
    pub(crate) message: LoggedMessage,
    pub(crate) errors: Vec<Problem>,
    pub(crate) status: Option<u16>,
    pub(crate) model: Option<String>,
    pub(crate) request_id: Option<String>,
    pub(crate) is_stream: bool,
    pub(crate) usage: TokenUsage,
    pub(crate) first_token_at: Option<Instant>,
    pub(crate) finish_reasons: Vec<String>,
    pub(crate) media_elided: u32,
    pub(crate) end_user: Option<String>,
    /// The message is one whole, valid JSON value (see `BodyFacts::whole_json`).
    pub(crate) whole_json: bool,
    pub(crate) events: Option<u64>,
    pub(crate) invocation: Invocation,
    pub(crate) failure: Option<String>,
    pub(crate) no_response_expected: bool,
    pub(crate) dimensions: Vec<(&'static str, String)>,
    /// A JSON-RPC id as written (see `BodyFacts::raw_id`).
    pub(crate) raw_id: Option<String>,
    /// Credentials replaced in the invocation's fields (a resource URI's query), by kind.
    pub(crate) invocation_redactions: BTreeMap<&'static str, u32>,
}

impl SideReport {
    /// A side's report from what its reader found; `side` prefixes the reader's errors.
    pub(crate) fn from_facts(facts: BodyFacts, side: &str, mut errors: Vec<Problem>) -> Self {
        errors.extend(facts.errors.into_iter().map(|e| e.prefixed(side)));
        SideReport {
            message: facts.message,
            errors,
            status: None,
            model: facts.model,
            request_id: facts.request_id,
            is_stream: facts.stream,
            usage: facts.usage,
            first_token_at: facts.first_token_at,
            finish_reasons: facts.finish_reasons,
            media_elided: facts.media_elided,
            end_user: facts.end_user,
            whole_json: facts.whole_json,
            events: facts.events,
            invocation: facts.invocation,
            failure: facts.failure,
            no_response_expected: facts.no_response_expected,
            dimensions: facts.dimensions,
            invocation_redactions: BTreeMap::new(),
            raw_id: facts.raw_id,
        }
    }
}

impl Exchange {
    pub(crate) fn new(
        shared: Arc<Shared>,
        route: Route,
        api: Arc<dyn LlmApi>,
        correlation_id: CorrelationId,
        trace: Option<(String, String)>,
        plan: ContentPlan,
        dimensions: ExchangeDimensions,
    ) -> Self {
        shared.stats.exchanges_started.fetch_add(1, Ordering::Relaxed);
        Exchange {
            shared,
            route,
            api,
            correlation_id,
            time_generated: SystemTime::now(),
            started: Instant::now(),
            trace,
            request_facts: Mutex::new(None),
            plan,
            waiting: Mutex::new(None),
            held_acknowledgement: Mutex::new(None),
            dimensions: Mutex::new(shared_map(dimensions.0)),
            usage_injected: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the request, read ahead whole, is a streamed chat completion the layer may add
    /// `stream_options.include_usage` to: asked for by the configuration, valid JSON with
    /// `"stream": true` (as its reader found).
    pub(crate) fn wants_stream_usage(&self) -> bool {
        if !self.config().ensure_stream_usage || self.route.family != crate::ApiFamily::ChatCompletions {
            return false;
        }
        let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
        facts.as_ref().is_some_and(|f| f.stream && f.json_ok)
    }

    /// The cap of a side's reader: 0 when its content is omitted anyway.
    pub(crate) fn cap(&self, kind: RecordKind) -> usize {
        match kind {
            RecordKind::Request if self.plan.prompt.is_none() => self.config().prompt_bytes,
            RecordKind::Response if self.plan.completion.is_none() => self.config().completion_bytes,
            _ => 0,
        }
    }

    pub(crate) fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// Replaces credentials in what the request names (a tool, a resource URI with a key in its
    /// query, a prompt), before both sides' records copy it.
    pub(crate) fn redact_invocation(&self, side: &mut SideReport) {
        if !self.config().redact_secrets {
            return;
        }
        let invocation = &mut side.invocation;
        for field in [
            &mut invocation.tool_name,
            &mut invocation.resource_uri,
            &mut invocation.prompt_name,
            &mut invocation.operation,
        ] {
            if let Some(text) = field.as_mut() {
                if let Some(redacted) = privacy::redact_secrets_in(text, &mut side.invocation_redactions) {
                    *text = redacted;
                }
            }
        }
    }

    pub(crate) fn set_request_facts(&self, side: &SideReport) {
        let facts = RequestFacts {
            model: side.model.clone().or_else(|| self.route.model.clone()),
            stream: side.is_stream,
            prompt: cfg!(feature = "tokenizer").then(|| side.message.clone()),
            end_user: side.end_user.clone(),
            json_ok: side.errors.is_empty(),
            invocation: side.invocation.clone(),
            request_id: side.request_id.clone(),
            raw_id: side.raw_id.clone(),
            no_response_expected: side.no_response_expected,
        };
        *self.request_facts.lock().unwrap_or_else(|p| p.into_inner()) = Some(facts);
    }

    /// Turns one side's report into records and hands them to the sink; with content sampled
    /// out, once both sides have reported (see [`ContentPlan::sampled_out`]).
    pub(crate) fn report(&self, kind: RecordKind, outcome: Outcome, side: SideReport) {
        if kind == RecordKind::Request {
            self.report_side(kind, outcome, side);
            let held = self
                .held_acknowledgement
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some((outcome, side)) = held {
                self.report_side(RecordKind::Response, outcome, side);
            }
            return;
        }
        if self.is_acknowledgement(outcome, &side) {
            // Checked and held under the one lock the request side takes the held answer with
            // (after it has set its facts): either the request sees it, or it sees the request.
            let mut held = self
                .held_acknowledgement
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let request_reported = self
                .request_facts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some();
            if !request_reported {
                *held = Some((outcome, side));
                return;
            }
        }
        self.report_side(kind, outcome, side);
    }

    fn report_side(&self, kind: RecordKind, outcome: Outcome, side: SideReport) {
        if kind == RecordKind::Response && self.is_bare_acknowledgement(outcome, &side) {
            // Nothing to log of it; with content sampled out, a request waiting for it goes now,
            // its content kept only if it failed.
            if self.plan.sampled_out {
                let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some((kind, outcome, side)) = waiting {
                    let keep = failed(outcome, &side);
                    self.emit(kind, outcome, side, (!keep).then_some(ContentOmitted::Sampled));
                }
            }
            return;
        }
        if !self.plan.sampled_out {
            return self.emit(kind, outcome, side, None);
        }
        let first = {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            match waiting.take() {
                None => {
                    *waiting = Some((kind, outcome, side));
                    return;
                }
                Some(first) => first,
            }
        };
        let keep = failed(first.1, &first.2) || failed(outcome, &side);
        let omitted = (!keep).then_some(ContentOmitted::Sampled);
        let (request, response) = match first.0 {
            RecordKind::Request => (first, (kind, outcome, side)),
            RecordKind::Response => ((kind, outcome, side), first),
        };
        self.emit(request.0, request.1, request.2, omitted);
        self.emit(response.0, response.1, response.2, omitted);
    }

    /// For families whose response must answer its request by id (JSON-RPC): a response to
    /// another id, or no response at all where one was owed, is said.
    fn check_answer(&self, request: &RequestFacts, outcome: Outcome, side: &mut SideReport) {
        let Some(asked) = request.raw_id.as_ref().or(request.request_id.as_ref()) else {
            return;
        };
        match side.raw_id.as_ref().or(side.request_id.as_ref()) {
            Some(answered) if answered != asked => side.errors.push(Problem::new(
                ProblemKind::Protocol,
                format!(
                    "the response's id {} answers no request of this exchange (the request's id is {})",
                    clip_field(answered),
                    clip_field(asked)
                ),
            )),
            Some(_) => {}
            None if request.no_response_expected
                || outcome != Outcome::Completed
                || side.status.is_some_and(|s| s >= 400)
                || !side.errors.is_empty() => {}
            None => side.errors.push(Problem::new(
                ProblemKind::Protocol,
                format!(
                    "no JSON-RPC response to the request (id {}): the answer {}",
                    clip_field(asked),
                    if side.message.total == 0 {
                        "is empty"
                    } else {
                        "carries none"
                    }
                ),
            )),
        }
    }

    /// Whether a response is an empty `202 Accepted`.
    fn is_acknowledgement(&self, outcome: Outcome, side: &SideReport) -> bool {
        outcome == Outcome::Completed
            && side.status == Some(202)
            && side.message.total == 0
            && side.errors.is_empty()
    }

    /// Whether a response is the empty `202 Accepted` that answers a request needing none (a
    /// JSON-RPC notification): it is not logged.
    fn is_bare_acknowledgement(&self, outcome: Outcome, side: &SideReport) -> bool {
        self.is_acknowledgement(outcome, side) && {
            let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
            facts.as_ref().is_some_and(|f| f.no_response_expected)
        }
    }

    /// Adds dimensions from headers the family names (see `LlmApi::dimension_headers`),
    /// unless the exchange has them already.
    pub(crate) fn add_header_dimensions(&self, headers: &http::HeaderMap) {
        let wanted = self.api.dimension_headers();
        if wanted.is_empty() {
            return;
        }
        let found: Vec<(&'static str, String)> = wanted
            .iter()
            .filter_map(|(header, name)| {
                let value = headers.get(*header)?.to_str().ok()?;
                Some((*name, value.to_string()))
            })
            .collect();
        self.add_dimensions(found);
    }

    /// Adds dimensions to the exchange's, unless it has them already.
    fn add_dimensions(&self, found: Vec<(&'static str, String)>) {
        if found.is_empty() {
            return;
        }
        let mut shared = self.dimensions.lock().unwrap_or_else(|p| p.into_inner());
        for (name, value) in found {
            if !shared.contains_key(name) {
                crate::attribution::add_dimension(Arc::make_mut(&mut shared), name, &value);
            }
        }
    }

    fn emit(
        &self,
        kind: RecordKind,
        outcome: Outcome,
        mut side: SideReport,
        sampled: Option<ContentOmitted>,
    ) {
        let duration = self.started.elapsed();
        // A failure the body reports (a JSON-RPC error) is a problem like the others, redacted
        // with them.
        let mut outcome = outcome;
        if let Some(failure) = side.failure.take() {
            side.errors.push(Problem::new(ProblemKind::Failed, failure));
            if outcome == Outcome::Completed {
                outcome = Outcome::UpstreamError;
            }
        }
        let cap = match kind {
            RecordKind::Request => self.config().prompt_bytes,
            RecordKind::Response => self.config().completion_bytes,
        };
        let planned = match kind {
            RecordKind::Request => self.plan.prompt,
            RecordKind::Response => self.plan.completion,
        };
        if kind == RecordKind::Request {
            side.errors.splice(
                0..0,
                self.plan
                    .note
                    .iter()
                    .map(|n| Problem::new(ProblemKind::Control, n.clone())),
            );
        }
        let estimated = kind == RecordKind::Response && self.estimate_tokens(outcome, &mut side);
        let mut content_omitted = planned.or(sampled);
        if content_omitted.is_some() {
            side.message = LoggedMessage::not_kept(side.message.total);
        } else if kind == RecordKind::Response && side.is_stream {
            if let Some(threshold) = self.config().media_inline_bytes {
                elide_stream_media(&mut side, threshold);
            }
        }
        let redactions = match self.redact(&mut side, cap) {
            Ok(redactions) => redactions,
            Err(problem) => {
                self.shared
                    .stats
                    .redactor_failures
                    .fetch_add(1, Ordering::Relaxed);
                side.errors.push(Problem::new(
                    ProblemKind::Redactor,
                    format!("redactor: {problem}; the content is withheld"),
                ));
                side.message = LoggedMessage::not_kept(side.message.total);
                content_omitted = Some(ContentOmitted::RedactorFailed);
                BTreeMap::new()
            }
        };
        let mut redactions = redactions;
        for (kind, n) in std::mem::take(&mut side.invocation_redactions) {
            *redactions.entry(kind.to_string()).or_insert(0) += n;
        }
        let chunked = chunk_captured(&side.message, self.config().chunk_bytes, cap);
        if let Some(at) = chunked.invalid_utf8_at {
            side.errors.push(Problem::new(
                ProblemKind::InvalidUtf8,
                format!(
                    "the message is not valid UTF-8 (first bad byte at offset {at}); bad bytes were replaced with U+FFFD"
                ),
            ));
        }
        let mut end_user = side.end_user.take();
        let mut cost = None;
        self.add_dimensions(std::mem::take(&mut side.dimensions));
        let mut invocation = std::mem::take(&mut side.invocation);
        let model = match kind {
            RecordKind::Request => {
                if side.no_response_expected && outcome == Outcome::Completed {
                    outcome = Outcome::NoResponseExpected;
                }
                side.model.or_else(|| self.route.model.clone())
            }
            RecordKind::Response => {
                // What the request said, once its side has reported: whether it asked for a
                // stream, its end user, and its model where the response names none (cloned
                // only then).
                let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
                let request = facts.as_ref();
                side.is_stream |= request.is_some_and(|f| f.stream);
                end_user = request.and_then(|f| f.end_user.clone());
                let request_model = request
                    .and_then(|f| f.model.as_deref())
                    .or(self.route.model.as_deref());
                cost = self.cost(side.model.as_deref(), request_model, &side.usage);
                if let Some(request) = request {
                    invocation = request.invocation.clone();
                    if self.api.ids_must_match() {
                        self.check_answer(request, outcome, &mut side);
                    }
                }
                side.model.or_else(|| request.and_then(|f| f.model.clone()))
            }
        };
        let error = (!side.errors.is_empty()).then(|| {
            let texts: Vec<&str> = side.errors.iter().map(Problem::detail).collect();
            texts.join("; ")
        });
        let mut error_kinds: Vec<ProblemKind> = side.errors.iter().map(Problem::kind).collect();
        error_kinds.sort_unstable();
        error_kinds.dedup();
        let dimensions = self.record_dimensions(end_user);
        let records = SideRecords {
            time_generated: self.time_generated,
            correlation_id: &self.correlation_id,
            kind,
            route: &self.route,
            model,
            request_id: side.request_id,
            is_stream: side.is_stream,
            stream_events: side.events,
            invocation,
            usage: side.usage,
            tokens_estimated: estimated,
            message_bytes: side.message.total,
            truncated: chunked.cut,
            invalid_utf8_replaced: chunked.invalid_utf8_at.is_some(),
            whole_json: side.whole_json
                && content_omitted.is_none()
                && !chunked.cut
                && chunked.invalid_utf8_at.is_none(),
            status: side.status,
            duration,
            time_to_first_token: side
                .first_token_at
                .map(|t| t.saturating_duration_since(self.started)),
            finish_reasons: side.finish_reasons,
            outcome,
            error,
            error_kinds,
            redactions,
            media_elided: side.media_elided,
            content_omitted,
            dimensions,
            cost,
            region: self.shared.config.region.as_deref(),
            trace: self.trace.as_ref(),
        };
        records.build(chunked.chunks, &mut |record| self.deliver(record));
    }

    /// The exchange's dimensions with the end user the request body named.
    fn record_dimensions(&self, end_user: Option<String>) -> Arc<BTreeMap<String, String>> {
        let mut shared = self.dimensions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(user) = end_user.filter(|_| !shared.contains_key("end_user")) {
            // Copied only if a record already holds the map (a response that came first).
            crate::attribution::add_dimension(Arc::make_mut(&mut shared), "end_user", &user);
        }
        shared.clone()
    }

    /// What the exchange cost in pico-dollars: the response's model's price, else the
    /// request's; the operator's table first, then the built-in one.
    fn cost(
        &self,
        response_model: Option<&str>,
        request_model: Option<&str>,
        usage: &TokenUsage,
    ) -> Option<u128> {
        let config = self.config();
        if !config.cost {
            return None;
        }
        let built_in = crate::cost::PriceTable::built_in();
        let tables = config.prices.as_deref().into_iter().chain([built_in]);
        let price = [response_model, request_model]
            .into_iter()
            .flatten()
            .find_map(|model| tables.clone().find_map(|t| t.get(model)))?;
        let tokens = crate::cost::Billed {
            prompt: usage.prompt,
            completion: usage.completion,
            cached: usage.cached,
            cache_creation: usage.cache_creation,
        };
        crate::cost::cost_pico(&self.route.family, tokens, price)
    }

    /// Fills in estimated token counts when the provider reported none and the model's
    /// tokenizer is known (`tokenizer` feature); whether it did.
    fn estimate_tokens(&self, outcome: Outcome, side: &mut SideReport) -> bool {
        let answered = side.status.is_some_and(|s| s < 400) && outcome != Outcome::ServiceError;
        if !answered || !side.usage.is_empty() || !self.config().estimate_tokens {
            return false;
        }
        #[cfg(feature = "tokenizer")]
        {
            let facts = self.request_facts.lock().unwrap_or_else(|p| p.into_inner());
            let model = side
                .model
                .clone()
                .or_else(|| facts.as_ref().and_then(|f| f.model.clone()));
            let prompt = facts.as_ref().and_then(|f| f.prompt.as_ref());
            let estimate =
                crate::estimate::estimate(model.as_deref(), &self.route.family, prompt, &side.message);
            if let Some(usage) = estimate {
                side.usage = usage;
                return true;
            }
        }
        false
    }

    fn deliver(&self, record: LlmLogRecord) {
        // Records are delivered even while the thread unwinds (a handler panicked and dropped the
        // body): those exchanges are the ones most worth logging. The cost is that a sink that
        // also panics then aborts the process, as any panic during unwinding does.
        let sink = &self.shared.sink;
        match catch_unwind(AssertUnwindSafe(|| sink.emit(record))) {
            Ok(()) => self.shared.stats.records_emitted.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.shared.stats.sink_panics.fetch_add(1, Ordering::Relaxed),
        };
    }
}

impl Exchange {
    /// Runs the redaction that is on over a side's logged message and error texts: secrets,
    /// then personal data, then the user's redactor (see [`privacy`](crate::privacy)); what
    /// was replaced, by kind. The message keeps its full size (`MessageBytes` is the size as it
    /// passed) and stays within `cap` (a replacement can be longer than what it replaces). An
    /// error when the user's redactor failed: the caller withholds the content.
    fn redact(&self, side: &mut SideReport, cap: usize) -> Result<BTreeMap<String, u32>, String> {
        let config = self.config();
        let mut counts = BTreeMap::new();
        if config.redact_secrets {
            redact_secrets(side, cap, &mut counts);
        }
        if config.redact_pii {
            for error in &mut side.errors {
                let error = error.detail_mut();
                let found = privacy::find_pii(error);
                if !found.is_empty() {
                    let edits = self.pii_edits(error, found);
                    *error = utf8(privacy::apply_edits(error.as_bytes(), &edits, &mut counts));
                }
            }
        }
        let redactor = self.shared.redactor.as_ref();
        if (!config.redact_pii && redactor.is_none()) || side.message.segments().is_empty() {
            return Ok(counts);
        }
        let whole = side.message.to_bytes();
        // Checked the fast way; only text with invalid UTF-8 takes the lossy copy.
        let mut text = match simdutf8::basic::from_utf8(&whole) {
            Ok(text) => text.to_string(),
            Err(_) => String::from_utf8_lossy(&whole).into_owned(),
        };
        let mut changed = false;
        if config.redact_pii {
            let found = privacy::find_pii(&text);
            if !found.is_empty() {
                let edits = self.pii_edits(&text, found);
                text = utf8(privacy::apply_edits(text.as_bytes(), &edits, &mut counts));
                changed = true;
            }
        }
        if let Some(redactor) = redactor {
            let mut edits = catch_unwind(AssertUnwindSafe(|| redactor.redact(&text)))
                .map_err(|_| "the redactor panicked".to_string())?;
            if !edits.is_empty() {
                privacy::check_edits(&text, &mut edits)?;
                text = utf8(privacy::apply_edits(text.as_bytes(), &edits, &mut counts));
                changed = true;
            }
        }
        if changed {
            set_text(side, text.into_bytes(), cap);
        }
        Ok(counts)
    }

    /// The edits for personal data found in `text`: plain tags, or keyed ones.
    fn pii_edits(&self, text: &str, found: Vec<privacy::PiiFound>) -> Vec<Edit> {
        let key = self.config().pii_hash_key.as_ref();
        found
            .into_iter()
            .map(|f| {
                let tag = key.map(|k| k.tag(f.kind, &text[f.range.clone()]));
                let edit = Edit::new(f.range, f.kind);
                match tag {
                    Some(tag) => edit.with_replacement(tag),
                    None => edit,
                }
            })
            .collect()
    }
}

/// Edited text (edits replace whole characters by valid text, so this never replaces).
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Replaces a side's message by `text`, cut at `cap` (at a character start) if the edits
/// made it longer; the full size stays the size as it passed.
fn set_text(side: &mut SideReport, mut text: Vec<u8>, cap: usize) {
    let mut truncated = side.message.truncated;
    if text.len() > cap {
        let mut end = cap;
        while end > 0 && (text[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        text.truncate(end);
        truncated = true;
    }
    side.message = LoggedMessage {
        segments: smallvec::smallvec![Bytes::from(text)],
        total: side.message.total,
        truncated,
    };
}

/// Elides media in a stream's assembled completion (a JSON body's media never reached it).
fn elide_stream_media(side: &mut SideReport, threshold: usize) {
    let mut elider = privacy::MediaElider::new(threshold);
    let mut out = Vec::new();
    for segment in side.message.segments() {
        elider.feed(segment, &mut |b| out.extend_from_slice(b));
    }
    elider.finish(&mut |b| out.extend_from_slice(b));
    if elider.elided() > 0 {
        side.media_elided += elider.elided();
        side.message = LoggedMessage {
            segments: smallvec::smallvec![Bytes::from(out)],
            total: side.message.total,
            truncated: side.message.truncated,
        };
    }
}

/// Replaces the credentials in a side's logged message and error texts (see
/// [`privacy`](crate::privacy)), counting them in `counts`; a credential the cap cut short at
/// the message's end is replaced too.
fn redact_secrets(side: &mut SideReport, cap: usize, counts: &mut BTreeMap<String, u32>) {
    let mut found = BTreeMap::new();
    if privacy::segments_may_hold_secrets(side.message.segments()) {
        let whole = side.message.to_bytes();
        let mut text = match privacy::redact_secrets(&whole) {
            Some((text, kinds)) => {
                found = kinds;
                text
            }
            None => whole.to_vec(),
        };
        if side.message.truncated {
            if let Some(at) = privacy::secret_cut_at_the_end(&text) {
                text.truncate(at);
                text.extend_from_slice(b"[REDACTED:cut_short]");
                *found.entry("cut_short").or_insert(0) += 1;
            }
        }
        if !found.is_empty() {
            set_text(side, text, cap);
        }
    }
    for error in &mut side.errors {
        if let Some(redacted) = privacy::redact_secrets_in(error.detail(), &mut found) {
            *error.detail_mut() = redacted;
        }
    }
    for (kind, n) in found {
        *counts.entry(kind.to_string()).or_insert(0) += n;
    }
}

/// Whether a side failed, which keeps the content of an exchange sampled out.
fn failed(outcome: Outcome, side: &SideReport) -> bool {
    !outcome.is_success()
        || !side.errors.is_empty()
        || side.failure.is_some()
        || side.status.is_some_and(|s| s >= 400)
}

/// A map to share among an exchange's records; the empty one is shared by every exchange (no
/// allocation for the common case of no dimensions).
fn shared_map(map: BTreeMap<String, String>) -> Arc<BTreeMap<String, String>> {
    static EMPTY: std::sync::OnceLock<Arc<BTreeMap<String, String>>> = std::sync::OnceLock::new();
    if map.is_empty() {
        EMPTY.get_or_init(Arc::default).clone()
    } else {
        Arc::new(map)
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // A side still waiting for the other (which never reported): logged with its content.
        let waiting = self.waiting.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let Some((kind, outcome, side)) = waiting {
            self.emit(kind, outcome, side, None);
        }
        // An acknowledgement whose request never reported: nothing says it was not needed.
        let held = self
            .held_acknowledgement
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((outcome, side)) = held {
            self.emit(RecordKind::Response, outcome, side, None);
        }
        self.shared
            .stats
            .exchanges_finished
            .fetch_add(1, Ordering::Relaxed);
    }
}
