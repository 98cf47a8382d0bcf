//! LoRA on a loaded [`Model`]: add fresh adapters, save and load them in PEFT's layout, merge
//! them into the base weights. The arithmetic of an adapted projection is in [`crate::lora`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::lora::{
    a_name, adapter_config_json, b_name, init_adapter, is_adapter_tensor, module_matches,
    parse_adapter_config, LoraConfig, LoraRuntime,
};
use crate::model::Model;

pub use crate::lora::{ADAPTER_CONFIG, ADAPTER_WEIGHTS};

/// PEFT prefixes every tensor of a causal-LM adapter with the wrapper's path.
const PEFT_PREFIX: &str = "base_model.model.";

/// What a module's name is in the transformers model (PEFT's keys), from our canonical name.
fn hf_module_name(model: &Model, module: &str) -> String {
    if model.config.vision.is_some() || model.config.arch == crate::config::Arch::Qwen3Vl {
        if let Some(rest) = module.strip_prefix("model.") {
            return format!("model.language_model.{rest}");
        }
        if let Some(rest) = module.strip_prefix("visual.") {
            return format!("model.visual.{rest}");
        }
    }
    module.to_string()
}

impl Model {
    /// The projections an adapter can sit on, with their `(out, in)` shapes, by canonical name.
    pub fn adaptable_modules(&self) -> BTreeMap<String, (usize, usize)> {
        let mut out = BTreeMap::new();
        for name in self.params().names() {
            let Some(module) = name.strip_suffix(".weight") else {
                continue;
            };
            if is_adapter_tensor(name)
                || !(module.starts_with("model.layers.") || module.starts_with("visual.blocks."))
            {
                continue;
            }
            if let Some(v) = self.params().var(name) {
                if let [o, i] = v.dims() {
                    out.insert(module.to_string(), (*o, *i));
                }
            }
        }
        out
    }

    /// The modules that hold an adapter now.
    pub fn adapted_modules(&self) -> Vec<String> {
        self.params()
            .names()
            .filter_map(|n| n.strip_suffix(".lora_A.weight").map(str::to_string))
            .collect()
    }

    /// Adds fresh adapters (A Kaiming-uniform, B zero: the outputs do not change) to every
    /// module `cfg` targets and freezes every other weight. Returns how many modules.
    pub fn add_lora(&mut self, cfg: &LoraConfig) -> Result<usize> {
        cfg.validate()?;
        if !cfg.enabled() {
            return Err(ModelError::invalid(
                "lora.rank: must be >= 1 to add adapters",
            ));
        }
        if self.lora().is_some() {
            return Err(ModelError::invalid(
                "the model already has LoRA adapters (merge or drop them first)",
            ));
        }
        let modules: Vec<(String, (usize, usize))> = self
            .adaptable_modules()
            .into_iter()
            .filter(|(m, _)| cfg.targets_module(m))
            .collect();
        if modules.is_empty() {
            let some: Vec<String> = self.adaptable_modules().into_keys().take(4).collect();
            return Err(ModelError::invalid(format!(
                "lora.targets {:?} match no module of this model (its modules are named like {})",
                cfg.targets,
                some.join(", ")
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let (dtype, device) = (self.dtype(), self.device().clone());
        let params = self.params_mut();
        for (module, (out, inp)) in &modules {
            let (a, b) = init_adapter(*out, *inp, cfg.rank, &mut rng, dtype, &device)?;
            params.insert(&a_name(module), &a)?;
            params.insert(&b_name(module), &b)?;
        }
        freeze_all_but_adapters(params);
        self.set_lora(Some(LoraRuntime::new(cfg.clone())))?;
        Ok(modules.len())
    }

    /// PEFT's `target_modules` for the adapted set: the plain list of leaf names when PEFT's
    /// suffix matching selects exactly these modules, else a regex that names each one.
    fn peft_target_modules(&self, adapted: &[String]) -> serde_json::Value {
        let leaves: BTreeSet<&str> = adapted
            .iter()
            .map(|m| m.rsplit('.').next().unwrap_or(m))
            .collect();
        let chosen: BTreeSet<&str> = adapted.iter().map(String::as_str).collect();
        let by_list: BTreeSet<String> = self
            .params()
            .names()
            .filter_map(|n| n.strip_suffix(".weight"))
            .filter(|m| !is_adapter_tensor(&format!("{m}.weight")))
            .filter(|m| {
                self.params()
                    .var(&format!("{m}.weight"))
                    .is_some_and(|v| v.rank() == 2)
            })
            .filter(|m| leaves.iter().any(|l| module_matches(m, l)))
            .map(str::to_string)
            .collect();
        let same =
            by_list.len() == chosen.len() && by_list.iter().all(|m| chosen.contains(m.as_str()));
        if same {
            return serde_json::json!(leaves.into_iter().collect::<Vec<_>>());
        }
        let alts: Vec<String> = adapted
            .iter()
            .map(|m| hf_module_name(self, m).replace('.', "\\."))
            .collect();
        serde_json::json!(format!("^(?:{})$", alts.join("|")))
    }

    /// Writes `adapter_config.json` + `adapter_model.safetensors` (PEFT names, f32 or the
    /// model's dtype) into `dir`. `base_model` goes into `base_model_name_or_path`.
    pub fn save_adapter(&self, dir: &Path, base_model: Option<&str>) -> Result<()> {
        let cfg = self
            .lora()
            .ok_or_else(|| ModelError::invalid("the model has no LoRA adapters to save"))?
            .clone();
        std::fs::create_dir_all(dir).map_err(|e| ModelError::io(dir, e))?;
        let adapted = self.adapted_modules();
        let mut tensors: Vec<(String, Tensor)> = Vec::with_capacity(2 * adapted.len());
        for m in &adapted {
            let key = format!("{PEFT_PREFIX}{}", hf_module_name(self, m));
            for (ours, theirs) in [(a_name(m), "lora_A"), (b_name(m), "lora_B")] {
                let v = self.params().var(&ours).ok_or_else(|| ModelError::Tensor {
                    name: ours.clone(),
                    msg: "missing".into(),
                })?;
                // In mixed precision the adapter's f32 master is what trains: save that.
                let v = self
                    .master_weights()
                    .and_then(|m| m.get(&ours))
                    .unwrap_or(v);
                tensors.push((
                    format!("{key}.{theirs}.weight"),
                    v.as_tensor().to_device(&Device::Cpu)?,
                ));
            }
        }
        let path = dir.join(ADAPTER_WEIGHTS);
        let map: std::collections::HashMap<String, Tensor> = tensors.into_iter().collect();
        candle_core::safetensors::save(&map, &path)
            .map_err(|e| ModelError::format(&path, format!("writing safetensors: {e}")))?;
        let targets = self.peft_target_modules(&adapted);
        let json = adapter_config_json(&cfg, targets, base_model);
        let text = serde_json::to_string_pretty(&json)
            .map_err(|e| ModelError::invalid(format!("adapter config: {e}")))?;
        let cpath = dir.join(ADAPTER_CONFIG);
        std::fs::write(&cpath, text).map_err(|e| ModelError::io(&cpath, e))?;
        Ok(())
    }

    /// Loads a PEFT LoRA folder onto this (base) model: every tensor must name a projection
    /// of the model with matching shapes. Freezes the base weights. Returns how many modules.
    pub fn load_adapter(&mut self, dir: &Path) -> Result<usize> {
        if self.lora().is_some() {
            return Err(ModelError::invalid(
                "the model already has LoRA adapters (merge or drop them first)",
            ));
        }
        let (mut cfg, _raw) = parse_adapter_config(&dir.join(ADAPTER_CONFIG))?;
        let path = dir.join(ADAPTER_WEIGHTS);
        if !path.is_file() {
            return Err(ModelError::format(
                dir,
                format!("no {ADAPTER_WEIGHTS} in this adapter folder"),
            ));
        }
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| {
            ModelError::format(&path, format!("not a readable safetensors file: {e}"))
        })?;
        let modules = self.adaptable_modules();
        let mut found: BTreeMap<String, [Option<Tensor>; 2]> = BTreeMap::new();
        for (name, t) in tensors {
            let bad = |msg: String| ModelError::format(&path, format!("tensor `{name}`: {msg}"));
            let rest = name.strip_prefix(PEFT_PREFIX).unwrap_or(&name);
            // Older PEFT versions kept the adapter name in the key.
            let rest = rest
                .replace(".lora_A.default.", ".lora_A.")
                .replace(".lora_B.default.", ".lora_B.");
            let (module, which) = if let Some(m) = rest.strip_suffix(".lora_A.weight") {
                (m, 0)
            } else if let Some(m) = rest.strip_suffix(".lora_B.weight") {
                (m, 1)
            } else {
                return Err(bad(
                    "not a LoRA A/B weight (modules_to_save and trained biases are not supported)"
                        .into(),
                ));
            };
            let module = crate::params::canonical_name(module);
            let Some(&(out, inp)) = modules.get(&module) else {
                return Err(bad(format!(
                    "names module `{module}`, which this model does not have"
                )));
            };
            let want = if which == 0 {
                [cfg.rank, inp]
            } else {
                [out, cfg.rank]
            };
            if t.dims() != want {
                return Err(bad(format!(
                    "shape {:?}, but r = {} and the module is ({out}, {inp}) so {:?} was expected",
                    t.dims(),
                    cfg.rank,
                    want
                )));
            }
            found.entry(module).or_default()[which] = Some(t);
        }
        if found.is_empty() {
            return Err(ModelError::format(&path, "holds no LoRA tensors"));
        }
        let dtype = self.dtype();
        cfg.vision = found.keys().any(|m| m.starts_with("visual."));
        let n = found.len();
        let params = self.params_mut();
        for (module, [a, b]) in found {
            let (Some(a), Some(b)) = (a, b) else {
                return Err(ModelError::format(
                    &path,
                    format!("module `{module}` has only one of lora_A / lora_B"),
                ));
            };
            params.insert(&a_name(&module), &a.to_dtype(dtype)?)?;
            params.insert(&b_name(&module), &b.to_dtype(dtype)?)?;
        }
        freeze_all_but_adapters(params);
        self.set_lora(Some(LoraRuntime::new(cfg)))?;
        Ok(n)
    }

    /// Folds every adapter into its base weight (`W + s * B A`, computed in f32) and drops the
    /// adapters: the result is a plain model that `Model::save` writes as a Hugging Face folder.
    /// Every weight is trainable afterwards. Returns how many modules were merged.
    pub fn merge_lora(&mut self) -> Result<usize> {
        let Some(rt) = self.lora_runtime().cloned() else {
            return Err(ModelError::invalid(
                "the model has no LoRA adapters to merge",
            ));
        };
        let scale = rt.config.scaling();
        let adapted = self.adapted_modules();
        let dtype = self.dtype();
        let params = self.params_mut();
        for m in &adapted {
            let get = |n: &str| -> Result<Tensor> {
                Ok(params
                    .var(n)
                    .ok_or_else(|| ModelError::Tensor {
                        name: n.to_string(),
                        msg: "missing".into(),
                    })?
                    .as_tensor()
                    .to_dtype(DType::F32)?)
            };
            let w = get(&format!("{m}.weight"))?;
            let delta = (get(&b_name(m))?.matmul(&get(&a_name(m))?)? * scale)?;
            let merged = (w + delta)?.to_dtype(dtype)?;
            params.insert(&format!("{m}.weight"), &merged)?;
            params.remove(&a_name(m));
            params.remove(&b_name(m));
        }
        params.unfreeze_all();
        self.set_lora(None)?;
        Ok(adapted.len())
    }
}

fn freeze_all_but_adapters(params: &mut crate::params::Params) {
    params.freeze_all();
    let names: Vec<String> = params
        .names()
        .filter(|n| is_adapter_tensor(n))
        .map(str::to_string)
        .collect();
    for n in names {
        params.unfreeze(&n);
    }
}
