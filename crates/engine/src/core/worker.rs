//! The engine core thread: receives commands, runs steps, streams events.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use skiff_backend_cpu::Cpu;
use skiff_models::Model;
use skiff_tokenizer::Tokenizer;

use crate::core::api::{EngineConfig, EngineStats, EventSender, Request, ShutdownMode};
use crate::error::{EngineError, Result};

/// A request accepted by `Engine::submit`, on its way to the core.
pub(crate) struct Submitted {
    /// Engine-wide request id.
    pub(crate) id: u64,
    /// The validated request.
    pub(crate) request: Request,
    /// Where its events go.
    pub(crate) events: EventSender,
}

/// What the outside sends to the core thread.
pub(crate) enum Command {
    /// A new request.
    Submit(Box<Submitted>),
    /// Stop the request with this id.
    Cancel(u64),
    /// Stop the core.
    Shutdown(ShutdownMode),
}

/// Everything the core thread owns from the start.
pub(crate) struct WorkerInit {
    pub(crate) model: Arc<Model>,
    pub(crate) tokenizer: Arc<Tokenizer>,
    pub(crate) cpu: Arc<Cpu>,
    pub(crate) config: EngineConfig,
    pub(crate) stats: Arc<Mutex<EngineStats>>,
    pub(crate) queued: Arc<AtomicUsize>,
}

/// Starts the core thread. Not built yet: always [`EngineError::NotReady`].
pub(crate) fn spawn(init: WorkerInit, inbox: mpsc::Receiver<Command>) -> Result<JoinHandle<()>> {
    drop((init, inbox));
    Err(EngineError::NotReady)
}
