//! The weights of a model as named candle `Var`s, with the names Hugging Face checkpoints use.
//!
//! Every weight is a `Var`, so an optimiser can update any of them in place and every layer that
//! holds a handle sees the new values. Freezing is a property of the name: a frozen weight is
//! handed out detached, so no gradient is computed for it at all (not just ignored).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};

#[derive(Clone)]
pub struct Params {
    vars: BTreeMap<String, Var>,
    frozen: BTreeSet<String>,
    pub dtype: DType,
    pub device: Device,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Params")
            .field("tensors", &self.vars.len())
            .field("frozen", &self.frozen.len())
            .field("dtype", &self.dtype)
            .finish()
    }
}

/// Maps the names newer transformers versions write (`model.language_model.*`, `model.visual.*`,
/// InternVL's `model.vision_tower.*` / `model.multi_modal_projector.*`) back to the original
/// checkpoint names, which every version reads.
pub fn canonical_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("model.language_model.") {
        format!("model.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.visual.") {
        format!("visual.{rest}")
    } else if let Some(rest) = name.strip_prefix("language_model.model.") {
        format!("model.{rest}")
    } else if let Some(rest) = name.strip_prefix("language_model.lm_head.") {
        format!("lm_head.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.vision_tower.") {
        format!("vision_tower.{rest}")
    } else if let Some(rest) = name.strip_prefix("model.multi_modal_projector.") {
        format!("multi_modal_projector.{rest}")
    } else {
        name.to_string()
    }
}

impl Params {
    pub fn new(dtype: DType, device: Device) -> Params {
        Params {
            vars: BTreeMap::new(),
            frozen: BTreeSet::new(),
            dtype,
            device,
        }
    }

    /// Adds (or replaces) a weight; the tensor is converted to the store's dtype and device.
    pub fn insert(&mut self, name: &str, t: &Tensor) -> Result<()> {
        let t = t
            .to_device(&self.device)?
            .to_dtype(self.dtype)?
            .contiguous()?;
        self.vars
            .insert(canonical_name(name), Var::from_tensor(&t)?);
        Ok(())
    }

    /// Drops a weight (and its frozen mark); returns whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.frozen.remove(name);
        self.vars.remove(name).is_some()
    }

    /// Un-freezes one weight.
    pub fn unfreeze(&mut self, name: &str) {
        self.frozen.remove(name);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.vars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// The tensor the forward pass uses: tracked for gradients unless the weight is frozen.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        let var = self.vars.get(name).ok_or_else(|| ModelError::Tensor {
            name: name.to_string(),
            msg: "missing from the checkpoint".into(),
        })?;
        Ok(if self.frozen.contains(name) {
            var.as_detached_tensor()
        } else {
            var.as_tensor().clone()
        })
    }

    pub fn get_opt(&self, name: &str) -> Result<Option<Tensor>> {
        if self.contains(name) {
            self.get(name).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Checks a weight's shape, naming the tensor when it is wrong.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self.get(name)?;
        if t.dims() != shape {
            return Err(ModelError::Tensor {
                name: name.to_string(),
                msg: format!("shape {:?}, the config implies {:?}", t.dims(), shape),
            });
        }
        Ok(t)
    }

    /// A getter for one module's weights: each name is looked up in `specs` (the module's
    /// `param_specs`) and checked against the shape its config implies ([`Params::get_shaped`]).
    pub fn shaped_by(
        &self,
        specs: Vec<(String, Vec<usize>, Init)>,
    ) -> impl Fn(&str) -> Result<Tensor> + '_ {
        let shapes: std::collections::HashMap<String, Vec<usize>> =
            specs.into_iter().map(|(n, s, _)| (n, s)).collect();
        move |name: &str| match shapes.get(name) {
            Some(shape) => self.get_shaped(name, shape),
            None => Err(ModelError::Tensor {
                name: name.to_string(),
                msg: "not among the weights the config implies".into(),
            }),
        }
    }

    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// Freezes every weight whose name starts with `prefix`; returns how many.
    pub fn freeze_prefix(&mut self, prefix: &str) -> usize {
        let names: Vec<String> = self
            .vars
            .keys()
            .filter(|n| n.starts_with(prefix))
            .cloned()
            .collect();
        let n = names.len();
        self.frozen.extend(names);
        n
    }

    pub fn freeze_all(&mut self) {
        self.frozen = self.vars.keys().cloned().collect();
    }

    pub fn unfreeze_all(&mut self) {
        self.frozen.clear();
    }

    pub fn is_frozen(&self, name: &str) -> bool {
        self.frozen.contains(name)
    }

    /// The weights an optimiser should update, by name.
    pub fn trainable(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .filter(|(n, _)| !self.frozen.contains(*n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    pub fn all(&self) -> Vec<(String, Var)> {
        self.vars
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// A deep copy with its own storage, all frozen: the reference policy for a KL term.
    pub fn frozen_copy(&self) -> Result<Params> {
        let mut out = Params::new(self.dtype, self.device.clone());
        for (name, var) in &self.vars {
            let t = var.as_tensor().copy()?.detach();
            out.vars.insert(name.clone(), Var::from_tensor(&t)?);
        }
        out.freeze_all();
        Ok(out)
    }

    /// Converts every weight to `dtype` (a new store; the old one is untouched).
    pub fn to_dtype(&self, dtype: DType) -> Result<Params> {
        let mut out = Params::new(dtype, self.device.clone());
        for (name, var) in &self.vars {
            out.insert(name, var.as_tensor())?;
        }
        out.frozen = self.frozen.clone();
        Ok(out)
    }

    /// Total number of scalar parameters, and of those that train.
    pub fn count(&self) -> (usize, usize) {
        let total = self.vars.values().map(|v| v.elem_count()).sum();
        let trainable = self
            .vars
            .iter()
            .filter(|(n, _)| !self.frozen.contains(*n))
            .map(|(_, v)| v.elem_count())
            .sum();
        (total, trainable)
    }

    /// Reads safetensors files (one, or the shards of an index), keeping only names `keep` accepts.
    pub fn load_safetensors(
        &mut self,
        files: &[std::path::PathBuf],
        keep: impl Fn(&str) -> bool,
    ) -> Result<()> {
        for file in files {
            let tensors = candle_core::safetensors::load(file, &Device::Cpu).map_err(|e| {
                ModelError::format(file, format!("not a readable safetensors file: {e}"))
            })?;
            for (name, t) in tensors {
                let name = canonical_name(&name);
                if keep(&name) {
                    self.insert(&name, &t)?;
                }
            }
        }
        Ok(())
    }

    /// Writes all weights (minus `skip`) to one safetensors file, with a `format: pt` header so
    /// transformers accepts it.
    pub fn save_safetensors(&self, path: &Path, skip: impl Fn(&str) -> bool) -> Result<()> {
        self.save_safetensors_with(path, skip, |_| None, None)
    }

    /// [`Params::save_safetensors`] where `replace` may give another tensor for a name (the f32
    /// master of a half-precision weight) and `dtype`, when given, is the dtype of every tensor
    /// written.
    pub fn save_safetensors_with(
        &self,
        path: &Path,
        skip: impl Fn(&str) -> bool,
        replace: impl Fn(&str) -> Option<Tensor>,
        dtype: Option<DType>,
    ) -> Result<()> {
        self.save_safetensors_as(path, skip, replace, dtype, str::to_string)
    }

    /// [`Params::save_safetensors_with`] writing each weight under `rename(name)` (InternVL's
    /// language model goes back under `language_model.`).
    pub fn save_safetensors_as(
        &self,
        path: &Path,
        skip: impl Fn(&str) -> bool,
        replace: impl Fn(&str) -> Option<Tensor>,
        dtype: Option<DType>,
        rename: impl Fn(&str) -> String,
    ) -> Result<()> {
        let mut data: Vec<(String, Tensor)> = Vec::new();
        for (name, var) in &self.vars {
            if skip(name) {
                continue;
            }
            let t = replace(name).unwrap_or_else(|| var.as_tensor().clone());
            let t = match dtype {
                Some(d) if d != t.dtype() => t.to_dtype(d)?,
                _ => t,
            };
            data.push((rename(name), t.to_device(&Device::Cpu)?));
        }
        let views: Vec<(String, TensorView)> = data
            .iter()
            .map(|(n, t)| Ok((n.clone(), TensorView::new(t)?)))
            .collect::<Result<_>>()?;
        let mut meta = std::collections::HashMap::new();
        meta.insert("format".to_string(), "pt".to_string());
        safetensors::serialize_to_file(views, Some(meta), path)
            .map_err(|e| ModelError::format(path, format!("writing safetensors: {e}")))?;
        Ok(())
    }

    /// Fills a store with seeded normal weights of standard deviation `std` (norm weights with 1
    /// and biases with 0 come from `init`). Seeded, so two runs build the same model.
    pub fn random(
        specs: &[(String, Vec<usize>, Init)],
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<Params> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Params::new(dtype, device.clone());
        for (name, shape, init) in specs {
            let n: usize = shape.iter().product();
            let values: Vec<f32> = match *init {
                Init::Normal(std) => (0..n).map(|_| std * normal(&mut rng)).collect(),
                Init::Const(c) => vec![c; n],
            };
            let t = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?;
            out.insert(name, &t)?;
        }
        Ok(out)
    }
}

/// How a freshly created weight is filled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    Normal(f32),
    Const(f32),
}

/// A standard normal sample (Box-Muller), so initialisation needs no extra crate.
fn normal(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// A borrowed view of a tensor's bytes for `safetensors::serialize`.
struct TensorView {
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl TensorView {
    fn new(t: &Tensor) -> Result<TensorView> {
        let t = t.contiguous()?;
        let shape = t.dims().to_vec();
        let (dtype, bytes) = match t.dtype() {
            DType::F32 => (
                safetensors::Dtype::F32,
                t.flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            DType::BF16 => (
                safetensors::Dtype::BF16,
                t.flatten_all()?
                    .to_vec1::<half::bf16>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            DType::F16 => (
                safetensors::Dtype::F16,
                t.flatten_all()?
                    .to_vec1::<half::f16>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            other => {
                return Err(ModelError::invalid(format!(
                    "cannot save a {other:?} weight"
                )))
            }
        };
        Ok(TensorView {
            dtype,
            shape,
            bytes,
        })
    }
}

impl safetensors::View for &TensorView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

impl safetensors::View for TensorView {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}
