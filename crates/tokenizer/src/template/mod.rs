//! Hugging Face chat templates, rendered by minijinja the way `transformers` renders them.
//!
//! `transformers` compiles templates in a sandboxed jinja2 environment with
//! `trim_blocks`, `lstrip_blocks`, the loop-controls extension, and three helpers:
//! `raise_exception(msg)`, `strftime_now(fmt)` and a `tojson` equal to Python's
//! `json.dumps`. We configure minijinja to match ([`env`]), add Python string/dict
//! methods through `minijinja_contrib::pycompat`, and strip the `{% generation %}` tags
//! that only training code understands.
//!
//! Templates come from model files, so they are untrusted code. The sandbox: no loader
//! (`include`/`import`/`extends` fail), a fuel budget bounding instructions and data, an
//! output cap, a recursion limit and a capped `range` ([`RenderLimits`]). A template that
//! exhausts any of them fails with [`Error::TemplateBudget`] instead of hanging.

mod clock;
mod env;
mod json;
mod pymethods;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use minijinja::Environment;
use minijinja::value::Value;

use crate::error::{Error, Result};
use json::{OrderedMap, to_value};

/// Name under which the template is stored in its environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Largest template source accepted (RELIABILITY §5(d): chat template ≤ 1 MiB).
pub const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// Sentinel in [`ChatTemplate`]'s clock meaning "use the system clock".
const SYSTEM_CLOCK: i64 = i64::MIN;

/// One chat message, as templates see it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    /// `system`, `user`, `assistant`, `tool`, …
    pub role: String,
    /// The text (multi-part content already flattened to one string).
    pub content: String,
    /// Tool calls made by an assistant turn, in the OpenAI shape; absent when `None`.
    pub tool_calls: Option<serde_json::Value>,
    /// Name of the speaker or tool; absent when `None`.
    pub name: Option<String>,
    /// The call a `tool` message answers; absent when `None`.
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message with just a role and text.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
            ..Message::default()
        }
    }

    fn to_value(&self) -> Value {
        let mut fields = vec![
            ("role".to_string(), Value::from(self.role.as_str())),
            ("content".to_string(), Value::from(self.content.as_str())),
        ];
        if let Some(name) = &self.name {
            fields.push(("name".into(), Value::from(name.as_str())));
        }
        if let Some(calls) = &self.tool_calls {
            fields.push(("tool_calls".into(), to_value(calls)));
        }
        if let Some(id) = &self.tool_call_id {
            fields.push(("tool_call_id".into(), Value::from(id.as_str())));
        }
        Value::from_object(OrderedMap(fields))
    }
}

/// Resource limits of one render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderLimits {
    /// minijinja fuel: about one unit per instruction and per 64 bytes of data.
    pub fuel: u64,
    /// Largest rendered prompt, in bytes.
    pub max_output_bytes: usize,
    /// Deepest nesting of macro calls and includes.
    pub max_recursion: usize,
    /// Most elements one `range()` call may produce.
    pub max_range: usize,
}

impl Default for RenderLimits {
    /// Generous for real conversations: Qwen 2.5's, Llama 3.2's and SmolLM2's templates
    /// reach the 8 MiB output cap (thousands of 2 kB turns, with tool schemas) before
    /// running out of fuel. Small enough that a hostile template fails in about 100 ms, and
    /// that fuel (one unit per 64 bytes built) refuses any value over 64 MB before it is
    /// allocated.
    fn default() -> RenderLimits {
        RenderLimits {
            fuel: 1_000_000,
            max_output_bytes: 8 << 20,
            max_recursion: 64,
            max_range: 100_000,
        }
    }
}

/// A compiled chat template plus the special-token strings it may reference.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos: String,
    eos: String,
    limits: RenderLimits,
    clock: Arc<AtomicI64>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("limits", &self.limits)
            .finish()
    }
}

impl ChatTemplate {
    /// Compiles `source` with the default [`RenderLimits`]. `bos` and `eos` are the texts
    /// of the model's bos/eos tokens (templates write `{{ bos_token }}`). Fails with
    /// [`Error::TemplateSyntax`] when the template does not parse and with
    /// [`Error::TemplateTooLarge`] above [`MAX_TEMPLATE_BYTES`].
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<ChatTemplate> {
        ChatTemplate::with_limits(source, bos, eos, RenderLimits::default())
    }

    /// Like [`ChatTemplate::new`] with explicit limits.
    pub fn with_limits(
        source: &str,
        bos: &str,
        eos: &str,
        limits: RenderLimits,
    ) -> Result<ChatTemplate> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::TemplateTooLarge {
                len: source.len(),
                cap: MAX_TEMPLATE_BYTES,
            });
        }
        let clock = Arc::new(AtomicI64::new(SYSTEM_CLOCK));
        let mut env = env::environment(&limits, Arc::clone(&clock))?;
        env.add_template_owned(TEMPLATE_NAME, env::strip_generation_tags(source))
            .map_err(|e| Error::TemplateSyntax {
                message: env::describe(&e),
            })?;
        Ok(ChatTemplate {
            env,
            bos: bos.to_string(),
            eos: eos.to_string(),
            limits,
            clock,
        })
    }

    /// Pins `strftime_now` to a fixed instant (seconds since the Unix epoch, UTC), for
    /// reproducible prompts and tests. By default it reads the system clock.
    pub fn set_fixed_time(&self, unix_secs: i64) {
        self.clock.store(unix_secs, Ordering::Relaxed);
    }

    /// Renders a conversation. `add_generation_prompt` appends the assistant-turn opener;
    /// `tools` (a JSON array of tool schemas) is passed as `tools`, else `tools` is none.
    ///
    /// Errors: [`Error::TemplateRaised`] carrying exactly the template's
    /// `raise_exception` message, [`Error::TemplateBudget`] when a limit is hit, and
    /// [`Error::TemplateRender`] for anything else.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        tools: Option<&serde_json::Value>,
    ) -> Result<String> {
        let template = self
            .env
            .get_template(TEMPLATE_NAME)
            .map_err(|e| Error::TemplateRender {
                message: env::describe(&e),
            })?;
        let messages: Vec<Value> = messages.iter().map(Message::to_value).collect();
        let ctx = minijinja::context! {
            messages => messages,
            bos_token => self.bos.as_str(),
            eos_token => self.eos.as_str(),
            add_generation_prompt => add_generation_prompt,
            tools => tools.map_or(Value::from(()), to_value),
            documents => Value::from(()),
        };
        let mut out = env::CappedWriter::new(self.limits.max_output_bytes);
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.into_bytes()).map_err(|e| Error::TemplateRender {
                message: format!("rendered bytes are not UTF-8: {e}"),
            }),
            Err(e) => Err(env::classify(&e, out.overflowed(), &self.limits)),
        }
    }

    /// Renders synthetic conversations (one user turn; a system, user, assistant, user
    /// exchange), with the generation prompt, so that a template that cannot render fails
    /// when the model is loaded rather than on its first request. A `raise_exception` from
    /// the template is its policy about a conversation (say, no system role), not breakage,
    /// and passes; syntax, render and budget errors do not.
    pub fn self_test(&self) -> Result<()> {
        let single = [Message::new("user", "Hello!")];
        let exchange = [
            Message::new("system", "You are a helpful assistant."),
            Message::new("user", "Hello!"),
            Message::new("assistant", "Hi! How can I help?"),
            Message::new("user", "What is 2 + 2?"),
        ];
        for messages in [&single[..], &exchange[..]] {
            match self.render(messages, true, None) {
                Ok(_) | Err(Error::TemplateRaised { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// True if the template reads the `tools` variable (so tool schemas can be passed to it
    /// rather than injected into a message).
    pub fn uses_tools(&self) -> bool {
        self.env
            .get_template(TEMPLATE_NAME)
            .map(|t| t.undeclared_variables(false).contains("tools"))
            .unwrap_or(false)
    }
}
