//! Chat templates rendered from the model folder's own template, against transformers'
//! `apply_chat_template` (fixtures by scripts/fixtures/chat_template_fixtures.py): Qwen2.5-VL,
//! InternVL3-hf, SmolLM2 (also from its GGUF), Qwen3, Llama-3 and Llama-3.2, with and without
//! images, system messages, several turns, tools and the generation prompt, byte for byte.

use std::path::{Path, PathBuf};

use minijinja::Value;
use mixed_r1_model::chat::{render_chatml, Message, Part, QWEN2_5_VL_DEFAULT_SYSTEM};
use mixed_r1_model::chat_template::ChatTemplate;
use mixed_r1_model::model::{LoadOptions, Model};
use mixed_r1_model::ModelConfig;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn templates_dir() -> PathBuf {
    fixtures().join("chat_templates")
}

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/assets")
}

/// An asset of scripts/fetch-assets.sh, or `None` (the test skips) when it is not installed.
/// CI fetches every asset first, so there a missing one is a failure, not a skip.
fn fetched(rel: &str) -> Option<PathBuf> {
    let p = assets().join(rel);
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} missing under CI=true (scripts/fetch-assets.sh)",
        p.display()
    );
    eprintln!("skipping: {} is not installed", p.display());
    None
}

/// expected.json as template data: parsed straight into minijinja values, so keys keep the
/// order transformers saw (it shows in `tojson`).
fn expected() -> Value {
    let text = std::fs::read_to_string(templates_dir().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn get(v: &Value, key: &str) -> Value {
    v.get_attr(key).unwrap()
}

fn s(v: &Value, key: &str) -> String {
    get(v, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
        .to_string()
}

fn cases(doc: &Value) -> Vec<Value> {
    get(doc, "cases").try_iter().unwrap().collect()
}

fn load(folder: &str) -> ChatTemplate {
    ChatTemplate::from_folder(&templates_dir().join(folder))
        .unwrap()
        .unwrap_or_else(|| panic!("{folder} has no template"))
}

/// Our message type from transformers' message JSON, when it maps one to one (a role and a
/// string content, or a list of image / text parts).
fn as_messages(v: &Value) -> Option<Vec<Message>> {
    let mut out = Vec::new();
    for m in v.try_iter().unwrap() {
        if m.try_iter().unwrap().count() != 2 {
            return None;
        }
        let role = m.get_attr("role").ok()?.as_str()?.to_string();
        let content = m.get_attr("content").ok()?;
        let parts = if let Some(t) = content.as_str() {
            vec![Part::Text(t.to_string())]
        } else {
            let mut parts = Vec::new();
            for p in content.try_iter().ok()? {
                match p.get_attr("type").ok()?.as_str()? {
                    "image" => parts.push(Part::Image),
                    "text" => {
                        parts.push(Part::Text(p.get_attr("text").ok()?.as_str()?.to_string()))
                    }
                    _ => return None,
                }
            }
            // A list of text parts only is sent as a string: fine for templates that accept
            // both, which is what this comparison is about.
            parts
        };
        out.push(Message { role, parts });
    }
    Some(out)
}

#[test]
fn every_case_renders_as_transformers_does() {
    let doc = expected();
    let templates = get(&doc, "templates");
    let mut checked = 0;
    let mut folders = std::collections::BTreeSet::new();
    for case in cases(&doc) {
        let folder = s(&case, "folder");
        let name = format!("{folder}/{}", s(&case, "case"));
        let t = load(&folder);
        let theirs = get(&templates, &folder);
        assert_eq!(t.source(), s(&theirs, "template"), "{name}: template text");
        // Every special token we found is the one transformers' tokenizer has.
        let specials = get(&theirs, "special_tokens");
        for (k, v) in t.special_tokens() {
            assert_eq!(get(&specials, k).as_str(), Some(v.as_str()), "{name}: {k}");
        }
        let gen = get(&case, "add_generation_prompt").is_true();
        let got = t.render_with(get(&case, "messages"), gen, &get(&case, "kwargs"));
        match get(&case, "rendered").as_str() {
            Some(want) => {
                let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
                assert_eq!(got, want, "{name}");
            }
            None => {
                let e = got.expect_err(&name).to_string();
                let want = s(&case, "error");
                assert!(e.contains(&want), "{name}: {e}");
                assert!(e.contains(t.origin().to_str().unwrap()), "{name}: {e}");
            }
        }
        folders.insert(folder);
        checked += 1;
    }
    assert!(checked >= 35, "only {checked} cases");
    for f in [
        "qwen2_5_vl",
        "internvl3_hf",
        "smollm2",
        "llama3",
        "llama3_2",
        "qwen3",
    ] {
        assert!(folders.contains(f), "no case for {f}");
    }
}

#[test]
fn our_messages_render_as_transformers_messages_do() {
    let doc = expected();
    let mut checked = 0;
    for case in cases(&doc) {
        let kwargs = get(&case, "kwargs");
        if kwargs.len() != Some(0) || get(&case, "rendered").is_none() {
            continue;
        }
        let Some(msgs) = as_messages(&get(&case, "messages")) else {
            continue;
        };
        let t = load(&s(&case, "folder"));
        let got = t
            .render(&msgs, get(&case, "add_generation_prompt").is_true())
            .unwrap();
        assert_eq!(got, s(&case, "rendered"), "{}", s(&case, "case"));
        checked += 1;
    }
    assert!(checked >= 25, "only {checked} cases");
}

/// Where a folder keeps its template, as transformers looks for it.
#[test]
fn the_dedicated_file_wins() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    let winner = |d: &Path| {
        let t = ChatTemplate::from_folder(d).unwrap().unwrap();
        (
            t.render(&[Message::user("x")], false).unwrap(),
            t.origin()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
        )
    };
    assert!(ChatTemplate::from_folder(d).unwrap().is_none());
    write(
        "tokenizer_config.json",
        r#"{"chat_template": "TC{{ bos_token }}", "bos_token": {"content": "<s>"}, "eos_token": null}"#,
    );
    assert_eq!(winner(d), ("TC<s>".into(), "tokenizer_config.json".into()));
    write("chat_template.jinja", "JINJA{{ bos_token }}\n");
    // Jinja drops a single trailing newline (keep_trailing_newline is off in transformers).
    assert_eq!(winner(d), ("JINJA<s>".into(), "chat_template.jinja".into()));
    write("chat_template.json", r#"{"chat_template": "JSON"}"#);
    assert_eq!(winner(d), ("JSON".into(), "chat_template.json".into()));
    write("processor_config.json", r#"{"chat_template": "PC"}"#);
    assert_eq!(winner(d), ("PC".into(), "processor_config.json".into()));
    // A processor config without a template does not count.
    write("processor_config.json", r#"{"image_seq_length": 4}"#);
    assert_eq!(winner(d).1, "chat_template.json");

    // Named templates in tokenizer_config.json: `default` is used.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::write(
        dir2.path().join("tokenizer_config.json"),
        r#"{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#,
    )
    .unwrap();
    assert_eq!(winner(dir2.path()).0, "D");
    // special_tokens_map.json fills names tokenizer_config.json lacks; a dict of named extra
    // tokens is passed too.
    std::fs::write(
        dir2.path().join("special_tokens_map.json"),
        r#"{"bos_token": "<b>", "extra_special_tokens": {"context_image_token": "<IMG_CONTEXT>"}}"#,
    )
    .unwrap();
    let t = ChatTemplate::from_folder(dir2.path()).unwrap().unwrap();
    assert_eq!(
        t.special_tokens(),
        &[
            ("bos_token".to_string(), "<b>".to_string()),
            (
                "context_image_token".to_string(),
                "<IMG_CONTEXT>".to_string()
            )
        ]
    );
}

#[test]
fn bad_templates_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("chat_template.jinja"),
        "ok\n{% if messages %}never closed",
    )
    .unwrap();
    let e = ChatTemplate::from_folder(d).unwrap_err().to_string();
    assert!(e.contains("chat_template.jinja"), "{e}");
    assert!(e.contains("does not parse"), "{e}");
    assert!(e.contains("line"), "{e}");

    std::fs::write(
        d.join("chat_template.jinja"),
        "{{ messages[0].content.no_such_method() }}",
    )
    .unwrap();
    let t = ChatTemplate::from_folder(d).unwrap().unwrap();
    let e = t
        .render(&[Message::user("x")], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("chat_template.jinja") && e.contains("failed to render"),
        "{e}"
    );

    std::fs::write(d.join("chat_template.json"), "{not json").unwrap();
    let e = ChatTemplate::from_folder(d).unwrap_err().to_string();
    assert!(
        e.contains("chat_template.json") && e.contains("not valid JSON"),
        "{e}"
    );
    std::fs::write(d.join("chat_template.json"), r#"{"template": "x"}"#).unwrap();
    let e = ChatTemplate::from_folder(d).unwrap_err().to_string();
    assert!(
        e.contains("chat_template.json") && e.contains("chat_template"),
        "{e}"
    );
    std::fs::write(d.join("chat_template.json"), r#"{"chat_template": 3}"#).unwrap();
    assert!(ChatTemplate::from_folder(d).is_err());

    // raise_exception: the template's own message.
    let t = ChatTemplate::new("{{ raise_exception('roles must alternate') }}", "t.jinja").unwrap();
    let e = t
        .render(&[Message::user("x")], true)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("roles must alternate") && e.contains("t.jinja"),
        "{e}"
    );
}

#[test]
fn jinja2_compatibility() {
    let r = |src: &str| {
        ChatTemplate::new(src, "t.jinja")
            .unwrap()
            .render(&[Message::system(" S "), Message::user("a b")], true)
            .unwrap()
    };
    // trim_blocks / lstrip_blocks, as transformers compiles templates.
    assert_eq!(
        r("{% for m in messages %}\n  {% if true %}\n{{ m.role }}\n  {% endif %}\n{% endfor %}"),
        "system\nuser\n"
    );
    // Python string methods, slicing, namespace, loop controls.
    assert_eq!(r("{{ messages[0].content.strip() }}|{{ messages[1].content.startswith('a') }}|{{ messages[1].content.split(' ')[-1] }}"), "S|True|b"); // Python's str(True)
    assert_eq!(r("{% set ns = namespace(n=0) %}{% for m in messages[::-1] %}{% set ns.n = ns.n + 1 %}{% if loop.first %}{% continue %}{% endif %}{{ m.role }}{% break %}{% endfor %}{{ ns.n }}"), "system2");
    // tojson is Python's json.dumps: spaced separators, no HTML escaping, unicode kept.
    let t = ChatTemplate::new("{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(ensure_ascii=true, separators=[',', ':']) }}|{{ [] | tojson(indent=2) }}", "t.jinja").unwrap();
    let kwargs: Value =
        serde_json::from_str(r#"{"x": {"b": "<é>", "a": [1, 2.5, null, true]}}"#).unwrap();
    assert_eq!(
        t.render_with(Value::from(Vec::<Value>::new()), false, &kwargs).unwrap(),
        "{\"b\": \"<é>\", \"a\": [1, 2.5, null, true]}|{\n  \"b\": \"<é>\",\n  \"a\": [\n    1,\n    2.5,\n    null,\n    true\n  ]\n}|{\"b\":\"<\\u00e9>\",\"a\":[1,2.5,null,true]}|[]"
    );
    // {% generation %} (transformers' assistant-mask tag) renders its body.
    assert_eq!(
        r("{% for m in messages %}{% generation %}{{ m.role }}{% endgeneration %}{% endfor %}"),
        "systemuser"
    );
    // strftime_now exists (Llama 3.x templates call it when no date_string is given).
    assert_eq!(r("{{ strftime_now('%Y') | length }}"), "4");
}

/// The SmolLM2 GGUF's `tokenizer.chat_template` metadata is what the model renders with.
#[test]
fn gguf_template_is_used() {
    let Some(gguf) = fetched("smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = Model::load(&gguf, &LoadOptions::default()).unwrap();
    let t = m
        .chat_template
        .as_ref()
        .expect("the GGUF has a chat template");
    let folder = load("smollm2");
    assert_eq!(t.source(), folder.source());
    assert_eq!(t.special_tokens(), folder.special_tokens());
    assert!(t
        .origin()
        .to_string_lossy()
        .ends_with(".gguf:tokenizer.chat_template"));
    let doc = expected();
    let mut checked = 0;
    for case in cases(&doc) {
        if s(&case, "folder") != "smollm2" {
            continue;
        }
        let msgs = as_messages(&get(&case, "messages")).unwrap();
        let gen = get(&case, "add_generation_prompt").is_true();
        assert_eq!(m.render_chat(&msgs, gen).unwrap(), s(&case, "rendered"));
        checked += 1;
    }
    assert!(checked >= 4);
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A Qwen2.5-VL folder with its template: the template's image placeholder is expanded to the
/// image's tokens, giving the ids transformers' processor gives.
#[test]
fn qwen2_5_vl_folder_template_expands_images_like_the_processor() {
    let Some(tok) = fetched("qwen-tokenizer/tokenizer.json") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("tiny-qwen2_5_vl"), dir.path());
    std::fs::copy(&tok, dir.path().join("tokenizer.json")).unwrap();
    // Without a template: the ChatML fallback.
    let m = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert!(m.chat_template.is_none());
    let msgs = [Message::user_with_images(1, "What shape is in the image?")];
    assert_eq!(
        m.render_chat(&msgs, true).unwrap(),
        render_chatml(&msgs, true, Some(QWEN2_5_VL_DEFAULT_SYSTEM))
    );
    copy_dir(&templates_dir().join("qwen2_5_vl"), dir.path());
    let m = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert!(m.chat_template.is_some());

    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("reference.json")).unwrap())
            .unwrap();
    let c = &reference["chat"]["image_user"];
    let img = image::open(fixtures().join(c["image"].as_str().unwrap())).unwrap();
    let p = m.chat_prompt(&msgs, &[img]).unwrap();
    assert_eq!(
        m.render_chat(&msgs, true).unwrap(),
        c["rendered"].as_str().unwrap()
    );
    let want: Vec<u32> = c["input_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect();
    assert_eq!(p.ids, want);
    assert!(p.images.is_some());
}

/// An InternVL folder with its template: one `<IMG_CONTEXT>` per image from the template, then
/// `<img>` + tokens x tiles + `</img>` as InternVLProcessor writes.
#[test]
fn internvl_folder_template_keeps_the_image_token_expansion() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join("tiny-internvl"), dir.path());
    copy_dir(&templates_dir().join("internvl3_hf"), dir.path());
    let m = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    let t = m.chat_template.as_ref().unwrap();
    assert!(t.origin().ends_with("chat_template.jinja"));
    let msgs = [
        Message::system("S"),
        Message::user_with_images(2, "Which is larger?"),
    ];
    let text = m.render_chat(&msgs, true).unwrap();
    assert_eq!(
        text,
        "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<IMG_CONTEXT>\n<IMG_CONTEXT>\n\
         Which is larger?<|im_end|>\n<|im_start|>assistant\n"
    );
    // The hand-written layout it replaces gives the same text.
    assert_eq!(
        text,
        mixed_r1_model::internvl_processor::render_internvl_chat(&msgs, true)
    );
    let p = m.internvl_processor.as_ref().unwrap();
    let expanded =
        mixed_r1_model::internvl_processor::expand_image_tokens(&text, &[1, 3], p.tokens_per_tile)
            .unwrap();
    assert_eq!(
        expanded.matches("<IMG_CONTEXT>").count(),
        4 * p.tokens_per_tile
    );
    assert_eq!(expanded.matches("<img>").count(), 2);
}

/// A saved checkpoint keeps its template and special tokens.
#[test]
fn save_keeps_the_template() {
    let config = ModelConfig::from_file(&fixtures().join("tiny-qwen2/config.json")).unwrap();
    let mut m = Model::random(config, 1, &LoadOptions::default()).unwrap();
    m.chat_template = Some(load("llama3"));
    let dir = tempfile::tempdir().unwrap();
    m.save(dir.path()).unwrap();
    let back = ChatTemplate::from_folder(dir.path()).unwrap().unwrap();
    assert_eq!(back.source(), load("llama3").source());
    assert_eq!(back.special_tokens(), load("llama3").special_tokens());
    let msgs = [Message::user("hi")];
    assert_eq!(
        back.render(&msgs, true).unwrap(),
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>\
         <|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    let reloaded = Model::load(dir.path(), &LoadOptions::default()).unwrap();
    assert_eq!(
        reloaded.render_chat(&msgs, true).unwrap(),
        back.render(&msgs, true).unwrap()
    );
}
