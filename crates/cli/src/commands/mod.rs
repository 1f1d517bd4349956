//! One module per subcommand: its `Args` (clap) and `run`.

pub mod bench;
pub mod chat;
pub mod inspect;
pub mod list;
pub mod loadgen;
pub mod perplexity;
pub mod pull;
pub mod quantize;
pub mod rm;
pub mod run;
pub mod serve;
pub mod synth;
