//! Opening non-GGUF inputs. Hugging Face folders are not wired in yet.

use std::path::Path;

use crate::error::{Error, Result};
use crate::model_file::ModelFile;

pub(crate) fn open_dir(path: &Path) -> Result<ModelFile> {
    Err(Error::UnsupportedFormat {
        reason: format!(
            "{}: Hugging Face folders are not supported yet",
            path.display()
        ),
    })
}

pub(crate) fn open_file(path: &Path) -> Result<ModelFile> {
    Err(Error::UnsupportedFormat {
        reason: format!("{}: not a GGUF file", path.display()),
    })
}
