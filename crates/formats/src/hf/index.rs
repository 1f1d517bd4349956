//! `model.safetensors.index.json`: shard names checked to stay inside the model folder,
//! every shard present, every tensor listed once and found in the shard that lists it.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};

use super::{is_plain_relative, read_capped};
use crate::error::{Error, Result};
use crate::safetensors::SafetensorsHeader;

/// Largest index file read.
const MAX_INDEX_LEN: u64 = 64 << 20;
const INDEX: &str = "model.safetensors.index.json";

/// Every `(tensor, shard)` pair of a JSON object, duplicates kept (serde_json's `Map`
/// would silently keep only the last).
struct Entries(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of tensor name to shard file name")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// `(tensor name, shard file name)` pairs in index order.
pub(crate) type WeightMap = Vec<(String, String)>;

#[derive(Deserialize)]
struct Index {
    weight_map: Entries,
}

/// The shard paths (sorted, unique) and the weight map of the index at `path`.
pub(crate) fn read_index(dir: &Path, path: &Path) -> Result<(Vec<PathBuf>, WeightMap)> {
    let bytes = read_capped(path, MAX_INDEX_LEN)?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::BadHeader {
        what: INDEX.into(),
        reason: e.to_string(),
    })?;
    let weight_map = index.weight_map.0;
    let mut seen = HashSet::new();
    let mut shard_names: Vec<&str> = Vec::new();
    for (tensor, shard) in &weight_map {
        if !seen.insert(tensor.as_str()) {
            return Err(Error::DuplicateTensor {
                name: tensor.clone(),
            });
        }
        if !shard_names.contains(&shard.as_str()) {
            shard_names.push(shard);
        }
    }
    shard_names.sort_unstable();
    let root = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
    let shards = shard_names
        .iter()
        .map(|name| shard_path(&root, name))
        .collect::<Result<Vec<_>>>()?;
    Ok((shards, weight_map))
}

/// `root/name`, refusing names or symlinks that leave `root`.
fn shard_path(root: &Path, name: &str) -> Result<PathBuf> {
    if !is_plain_relative(name) {
        return Err(Error::PathEscapesModelDir {
            name: name.to_string(),
        });
    }
    let path = root.join(name);
    if !path.is_file() {
        return Err(Error::MissingShard {
            name: name.to_string(),
        });
    }
    let real = path.canonicalize().map_err(|e| Error::io(&path, e))?;
    if !real.starts_with(root) {
        return Err(Error::PathEscapesModelDir {
            name: name.to_string(),
        });
    }
    Ok(real)
}

/// Each indexed tensor is in the shard the index names, and no shard holds unlisted ones.
pub(crate) fn check_weight_map(
    weight_map: &[(String, String)],
    shards: &[PathBuf],
    headers: &[SafetensorsHeader],
) -> Result<()> {
    let file_name = |p: &PathBuf| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut listed = 0usize;
    for (tensor, shard) in weight_map {
        let shard_file = Path::new(shard)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let idx = shards.iter().position(|p| Some(file_name(p)) == shard_file);
        let found = idx.is_some_and(|i| headers[i].tensors.iter().any(|t| &t.name == tensor));
        if !found {
            let reason = format!("tensor {tensor} is listed in shard {shard} but not stored there");
            return Err(Error::BadHeader {
                what: INDEX.into(),
                reason,
            });
        }
        listed += 1;
    }
    let stored: usize = headers.iter().map(|h| h.tensors.len()).sum();
    if stored != listed {
        let reason = format!("the shards hold {stored} tensors, the index lists {listed}");
        return Err(Error::BadHeader {
            what: INDEX.into(),
            reason,
        });
    }
    Ok(())
}
