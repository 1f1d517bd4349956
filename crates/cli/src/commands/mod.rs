//! One module per subcommand: its `Args` (clap) and `run`.

pub mod inspect;
pub mod list;
pub mod pull;
pub mod quantize;
pub mod rm;
