//! Args schemas: every validation rule, strict schema errors and canonical bytes.

use serde_json::{Value, json};
use verinfer_task::{
    ArgsError, MAX_ARGS_BYTES, Precision, Sampling, TaskArgs, TaskKind, TextInput,
};

const DIGEST: &str = "sha256:3f1c5c2a8e7d9b4f6a0e2d1c8b7a6f5e4d3c2b1a0f9e8d7c6b5a493827160514";

fn image() -> Value {
    json!({
        "kind": "image",
        "version": 2,
        "model": { "name": "sd-1.5", "digest": DIGEST },
        "prompt": "a red fox",
        "width": 512,
        "height": 512,
        "steps": 30,
        "guidance_scale": 7.5,
        "scheduler": "euler_ancestral",
        "num_images": 4,
        "seed": 42
    })
}

fn text() -> Value {
    json!({
        "kind": "text",
        "version": 2,
        "model": { "name": "tiny-llm", "digest": DIGEST },
        "input": { "prompt": "Once upon a time" },
        "max_tokens": 64,
        "sampling": { "mode": "greedy" },
        "seed": 7
    })
}

/// `value` with the field at `pointer` set (added if absent) to `new`.
fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let object = value.pointer_mut(parent).and_then(Value::as_object_mut);
    object
        .unwrap_or_else(|| panic!("no object at {parent:?}"))
        .insert(key.to_owned(), new);
    value
}

fn parse(value: &Value) -> Result<TaskArgs, ArgsError> {
    TaskArgs::from_slice(&serde_json::to_vec(value).unwrap())
}

/// Asserts the args break a validation rule on `field`, and the message names the field.
#[track_caller]
fn rejects(value: Value, field: &str) -> String {
    match parse(&value) {
        Err(error @ ArgsError::Invalid { .. }) => {
            assert_eq!(error.field(), Some(field), "wrong field in: {error}");
            let message = error.to_string();
            assert!(
                message.contains(field),
                "message does not name {field}: {message}"
            );
            message
        }
        other => panic!("expected a rule on {field} to reject the args, got {other:?}"),
    }
}

/// Asserts the args do not fit the schema, and serde's message contains `needle`.
#[track_caller]
fn schema_rejects(bytes: &[u8], needle: &str) {
    match TaskArgs::from_slice(bytes) {
        Err(error @ ArgsError::Schema(_)) => {
            let message = error.to_string();
            assert!(
                message.contains(needle),
                "message does not contain {needle:?}: {message}"
            );
        }
        other => panic!("expected a schema error mentioning {needle:?}, got {other:?}"),
    }
}

#[test]
fn valid_baselines_parse() {
    let image = parse(&image()).unwrap();
    assert_eq!(image.kind(), TaskKind::Image);
    assert_eq!(image.image_count(), 4);
    assert_eq!(image.model().digest, DIGEST);
    assert_eq!(image.seed(), 42);
    let TaskArgs::Image(ref args) = image else {
        unreachable!()
    };
    assert_eq!(args.precision, Precision::F32, "precision defaults to f32");
    assert_eq!(args.negative_prompt, None);

    let text = parse(&text()).unwrap();
    assert_eq!(text.kind(), TaskKind::Text);
    assert_eq!(text.image_count(), 0);
    let TaskArgs::Text(ref args) = text else {
        unreachable!()
    };
    assert_eq!(args.sampling, Sampling::Greedy {});
    assert!(args.stop.is_empty(), "stop defaults to []");
    assert_eq!(args.input, TextInput::Prompt("Once upon a time".into()));
}

#[test]
fn boundary_values_are_accepted() {
    let edges = [
        with(image(), "/width", json!(64)),
        with(image(), "/width", json!(2048)),
        with(
            with(image(), "/height", json!(2048)),
            "/num_images",
            json!(1),
        ),
        with(image(), "/steps", json!(1)),
        with(image(), "/steps", json!(150)),
        with(image(), "/guidance_scale", json!(0)),
        with(image(), "/guidance_scale", json!(30)),
        with(image(), "/num_images", json!(16)),
        with(image(), "/seed", json!(9_007_199_254_740_991u64)),
        with(image(), "/prompt", json!("x".repeat(2000))),
        with(image(), "/prompt", json!("字".repeat(2000))),
        with(image(), "/negative_prompt", json!("")),
        with(image(), "/negative_prompt", Value::Null),
        with(image(), "/precision", json!("bf16")),
        with(image(), "/scheduler", json!("ddpm")),
        with(text(), "/max_tokens", json!(4096)),
        with(
            text(),
            "/sampling",
            json!({"mode": "sample", "temperature": 2.0, "top_p": 1.0, "top_k": 1}),
        ),
        with(text(), "/stop", json!(["a", "b", "c", "d".repeat(64)])),
    ];
    for args in edges {
        if let Err(error) = parse(&args) {
            panic!("rejected {args}: {error}");
        }
    }
}

#[test]
fn image_rules_name_the_field() {
    assert_eq!(
        rejects(with(image(), "/width", json!(100)), "width"),
        "invalid task args: width 100 is not a multiple of 8"
    );
    rejects(with(image(), "/width", json!(56)), "width");
    rejects(with(image(), "/width", json!(2056)), "width");
    rejects(with(image(), "/height", json!(516)), "height");
    rejects(with(image(), "/height", json!(0)), "height");
    rejects(with(image(), "/steps", json!(0)), "steps");
    rejects(with(image(), "/steps", json!(151)), "steps");
    rejects(
        with(image(), "/guidance_scale", json!(-0.5)),
        "guidance_scale",
    );
    rejects(
        with(image(), "/guidance_scale", json!(30.01)),
        "guidance_scale",
    );
    rejects(with(image(), "/num_images", json!(0)), "num_images");
    rejects(with(image(), "/num_images", json!(17)), "num_images");
    // 2048x2048 x 5 images is over the 16 Mpx task budget although each value is in range.
    let over_budget = with(
        with(with(image(), "/width", json!(2048)), "/height", json!(2048)),
        "/num_images",
        json!(5),
    );
    assert!(rejects(over_budget, "num_images").contains("pixel task budget"));
    assert!(
        rejects(
            with(image(), "/seed", json!(9_007_199_254_740_992u64)),
            "seed"
        )
        .contains("2^53-1")
    );
    rejects(with(image(), "/seed", json!(u64::MAX)), "seed");
    rejects(with(image(), "/version", json!(1)), "version");
    rejects(with(image(), "/version", json!(3)), "version");
    rejects(with(image(), "/version", json!(0)), "version");
}

#[test]
fn prompt_rules_name_the_field() {
    rejects(with(image(), "/prompt", json!("")), "prompt");
    rejects(with(image(), "/prompt", json!(" \n\t ")), "prompt");
    assert!(
        rejects(with(image(), "/prompt", json!("x".repeat(2001))), "prompt").contains("characters")
    );
    // 1501 four-byte characters: under the character limit, over the byte limit.
    assert!(
        rejects(with(image(), "/prompt", json!("🦊".repeat(1501))), "prompt").contains("bytes")
    );
    rejects(
        with(image(), "/negative_prompt", json!("x".repeat(2001))),
        "negative_prompt",
    );
}

#[test]
fn model_rules_name_the_field() {
    rejects(with(image(), "/model/name", json!("")), "model.name");
    rejects(
        with(image(), "/model/name", json!("n".repeat(129))),
        "model.name",
    );
    rejects(
        with(image(), "/model/digest", json!(DIGEST.to_uppercase())),
        "model.digest",
    );
    rejects(
        with(
            image(),
            "/model/digest",
            json!(DIGEST.replace("sha256:", "sha512:")),
        ),
        "model.digest",
    );
    rejects(
        with(image(), "/model/digest", json!(&DIGEST[..DIGEST.len() - 1])),
        "model.digest",
    );
    rejects(
        with(text(), "/model/digest", json!(DIGEST.replace('f', "g"))),
        "model.digest",
    );
}

#[test]
fn non_finite_guidance_is_rejected_by_validate() {
    // JSON cannot carry NaN; args built in Rust can.
    let mut args = parse(&image()).unwrap();
    let TaskArgs::Image(ref mut image) = args else {
        unreachable!()
    };
    image.guidance_scale = f64::NAN;
    let error = args.validate().unwrap_err();
    assert_eq!(error.field(), Some("guidance_scale"));
    assert!(error.to_string().contains("not a finite number"), "{error}");
}

#[test]
fn text_rules_name_the_field() {
    rejects(with(text(), "/version", json!(1)), "version");
    rejects(with(text(), "/max_tokens", json!(0)), "max_tokens");
    rejects(with(text(), "/max_tokens", json!(4097)), "max_tokens");
    rejects(with(text(), "/seed", json!(1u64 << 53)), "seed");
    rejects(
        with(text(), "/input", json!({"prompt": "  "})),
        "input.prompt",
    );
    rejects(
        with(
            text(),
            "/input",
            json!({"prompt": "p".repeat(32 * 1024 + 1)}),
        ),
        "input.prompt",
    );
    rejects(
        with(text(), "/input", json!({"messages": []})),
        "input.messages",
    );
    let user = json!({"role": "user", "content": "hi"});
    rejects(
        with(
            text(),
            "/input",
            json!({"messages": vec![user.clone(); 65]}),
        ),
        "input.messages",
    );
    let long = json!({"role": "user", "content": "y".repeat(20_000)});
    rejects(
        with(text(), "/input", json!({"messages": [long.clone(), long]})),
        "input.messages",
    );
    rejects(
        with(
            text(),
            "/input",
            json!({"messages": [user, {"role": "assistant", "content": " "}]}),
        ),
        "input.messages[1].content",
    );
}

#[test]
fn sampling_rules_name_the_field() {
    let sample = |extra: Value| {
        let mut sampling = json!({"mode": "sample", "temperature": 0.7});
        for (key, value) in extra.as_object().unwrap() {
            sampling[key] = value.clone();
        }
        with(text(), "/sampling", sampling)
    };
    rejects(sample(json!({"temperature": 0})), "sampling.temperature");
    rejects(sample(json!({"temperature": -1})), "sampling.temperature");
    rejects(sample(json!({"temperature": 2.01})), "sampling.temperature");
    rejects(sample(json!({"top_p": 0})), "sampling.top_p");
    rejects(sample(json!({"top_p": 1.01})), "sampling.top_p");
    rejects(sample(json!({"top_k": 0})), "sampling.top_k");
    let valid = parse(&sample(json!({"top_k": 5}))).unwrap();
    let TaskArgs::Text(text_args) = valid else {
        unreachable!()
    };
    assert_eq!(
        text_args.sampling,
        Sampling::Sample {
            temperature: 0.7,
            top_p: None,
            top_k: Some(5)
        }
    );
}

#[test]
fn stop_rules_name_the_field() {
    rejects(
        with(text(), "/stop", json!(["a", "b", "c", "d", "e"])),
        "stop",
    );
    rejects(with(text(), "/stop", json!(["a", ""])), "stop[1]");
    rejects(with(text(), "/stop", json!(["s".repeat(65)])), "stop[0]");
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let mut top = image();
    top["strength"] = json!(0.5);
    schema_rejects(
        &serde_json::to_vec(&top).unwrap(),
        "unknown field `strength`",
    );
    let mut model = image();
    model["model"]["revision"] = json!("main");
    schema_rejects(
        &serde_json::to_vec(&model).unwrap(),
        "unknown field `revision`",
    );
    let mut text_top = text();
    text_top["temperature"] = json!(1.0);
    schema_rejects(
        &serde_json::to_vec(&text_top).unwrap(),
        "unknown field `temperature`",
    );
    let input = with(text(), "/input", json!({"prompt": "p", "system": "s"}));
    schema_rejects(
        &serde_json::to_vec(&input).unwrap(),
        "unknown field `system`",
    );
    let message = with(
        text(),
        "/input",
        json!({"messages": [{"role": "user", "content": "c", "name": "bob"}]}),
    );
    schema_rejects(
        &serde_json::to_vec(&message).unwrap(),
        "unknown field `name`",
    );
    // A unit-like greedy mode must not silently ignore sampling parameters.
    let greedy = with(
        text(),
        "/sampling",
        json!({"mode": "greedy", "temperature": 0.7}),
    );
    schema_rejects(
        &serde_json::to_vec(&greedy).unwrap(),
        "unknown field `temperature`",
    );
    let sample = with(
        text(),
        "/sampling",
        json!({"mode": "sample", "temperature": 0.7, "min_p": 0.1}),
    );
    schema_rejects(
        &serde_json::to_vec(&sample).unwrap(),
        "unknown field `min_p`",
    );
}

#[test]
fn schema_errors_name_the_problem() {
    let bytes = |value: Value| serde_json::to_vec(&value).unwrap();
    schema_rejects(
        &bytes(with(image(), "/scheduler", json!("euler"))),
        "unknown variant `euler`",
    );
    schema_rejects(
        &bytes(with(image(), "/precision", json!("f64"))),
        "unknown variant `f64`",
    );
    schema_rejects(
        &bytes(with(image(), "/kind", json!("audio"))),
        "unknown variant `audio`",
    );
    schema_rejects(
        &bytes(with(text(), "/sampling", json!({"mode": "beam"}))),
        "unknown variant `beam`",
    );
    schema_rejects(
        &bytes(with(
            text(),
            "/input",
            json!({"messages": [{"role": "tool", "content": "c"}]}),
        )),
        "unknown variant `tool`",
    );
    schema_rejects(
        &bytes(with(image(), "/width", json!(512.0))),
        "expected u32",
    );
    schema_rejects(&bytes(with(image(), "/width", json!(-512))), "expected u32");
    schema_rejects(&bytes(with(image(), "/seed", json!("42"))), "expected u64");
    let mut missing = image();
    missing.as_object_mut().unwrap().remove("width");
    schema_rejects(&bytes(missing), "missing field `width`");
    let mut no_kind = image();
    no_kind.as_object_mut().unwrap().remove("kind");
    schema_rejects(&bytes(no_kind), "missing field `kind`");
    schema_rejects(
        &bytes(with(
            text(),
            "/input",
            json!({"prompt": "p", "messages": []}),
        )),
        "exactly one",
    );
    schema_rejects(
        &bytes(with(text(), "/input", json!({}))),
        "needs `prompt` or `messages`",
    );
    schema_rejects(
        br#"{"kind":"text","kind":"image"}"#,
        "duplicate field `kind`",
    );
    let duplicate = String::from_utf8(bytes(image())).unwrap().replacen(
        "\"width\":512",
        "\"width\":512,\"width\":1024",
        1,
    );
    schema_rejects(duplicate.as_bytes(), "duplicate field `width`");
    let mut trailing = bytes(image());
    trailing.extend_from_slice(b" {}");
    schema_rejects(&trailing, "trailing characters");
    schema_rejects(b"", "EOF");
    schema_rejects(b"[]", "");
}

#[test]
fn oversized_args_are_rejected_before_parsing() {
    let mut value = image();
    value["prompt"] = json!("x".repeat(MAX_ARGS_BYTES));
    let bytes = serde_json::to_vec(&value).unwrap();
    match TaskArgs::from_slice(&bytes) {
        Err(error @ ArgsError::TooLarge { .. }) => {
            assert_eq!(
                error.to_string(),
                format!(
                    "task args are {} bytes, more than the 65536-byte limit",
                    bytes.len()
                )
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn canonical_bytes_are_compact_ordered_and_round_trip() {
    let image = parse(&image()).unwrap();
    let canonical = image.to_canonical_bytes();
    assert_eq!(
        String::from_utf8(canonical.clone()).unwrap(),
        format!(
            r#"{{"kind":"image","version":2,"model":{{"name":"sd-1.5","digest":"{DIGEST}"}},"prompt":"a red fox","width":512,"height":512,"steps":30,"guidance_scale":7.5,"scheduler":"euler_ancestral","num_images":4,"seed":42,"precision":"f32"}}"#
        )
    );
    let text = parse(&with(
        text(),
        "/sampling",
        json!({"top_p": 0.9, "temperature": 1, "mode": "sample"}),
    ))
    .unwrap();
    assert_eq!(
        String::from_utf8(text.to_canonical_bytes()).unwrap(),
        format!(
            r#"{{"kind":"text","version":2,"model":{{"name":"tiny-llm","digest":"{DIGEST}"}},"input":{{"prompt":"Once upon a time"}},"max_tokens":64,"sampling":{{"mode":"sample","temperature":1.0,"top_p":0.9}},"seed":7,"stop":[]}}"#
        )
    );
    for args in [image, text] {
        let canonical = args.to_canonical_bytes();
        let reparsed = TaskArgs::from_slice(&canonical).unwrap();
        assert_eq!(reparsed, args);
        assert_eq!(
            reparsed.to_canonical_bytes(),
            canonical,
            "canonical bytes are a fixed point"
        );
    }
}

#[test]
fn floats_parse_exactly_and_round_trip() {
    // Needs correctly rounded parsing (serde_json's `float_roundtrip`).
    for guidance in [
        7.000000000000001_f64,
        0.1 + 0.2,
        29.999999999999996,
        5e-324,
        // Parsed one ulp off without `float_roundtrip`.
        4.055474706295447e-187,
        9.812652307351939e-86,
    ] {
        let args = parse(&with(image(), "/guidance_scale", json!(guidance))).unwrap();
        let TaskArgs::Image(ref image_args) = args else {
            unreachable!()
        };
        assert_eq!(
            image_args.guidance_scale.to_bits(),
            guidance.to_bits(),
            "{guidance:e} parsed inexactly"
        );
        let reparsed = TaskArgs::from_slice(&args.to_canonical_bytes()).unwrap();
        assert_eq!(reparsed, args, "guidance {guidance:e} did not round-trip");
    }
}

#[test]
fn example_files_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let image = TaskArgs::from_slice(&std::fs::read(dir.join("image_args.json")).unwrap()).unwrap();
    assert_eq!((image.kind(), image.image_count()), (TaskKind::Image, 4));
    let text = TaskArgs::from_slice(&std::fs::read(dir.join("text_args.json")).unwrap()).unwrap();
    assert_eq!((text.kind(), text.image_count()), (TaskKind::Text, 0));
    assert!(
        matches!(&text, TaskArgs::Text(t) if matches!(t.input, TextInput::Messages(ref m) if m.len() == 2))
    );
}

#[test]
fn args_must_match_the_on_chain_task() {
    let image = parse(&image()).unwrap();
    image.check_matches_task(TaskKind::Image, 4).unwrap();
    assert_eq!(
        image
            .check_matches_task(TaskKind::Image, 3)
            .unwrap_err()
            .field(),
        Some("num_images")
    );
    assert_eq!(
        image
            .check_matches_task(TaskKind::Text, 0)
            .unwrap_err()
            .field(),
        Some("kind")
    );
    let text = parse(&text()).unwrap();
    text.check_matches_task(TaskKind::Text, 0).unwrap();
    assert_eq!(
        text.check_matches_task(TaskKind::Text, 1)
            .unwrap_err()
            .field(),
        Some("num_images")
    );
}

#[test]
fn args_hash_is_keccak256_of_the_exact_bytes() {
    // keccak256("") is a well-known constant.
    assert_eq!(
        verinfer_task::args_hash(b"").to_string(),
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    );
    let pretty = serde_json::to_vec_pretty(&image()).unwrap();
    let compact = serde_json::to_vec(&image()).unwrap();
    assert_ne!(
        verinfer_task::args_hash(&pretty),
        verinfer_task::args_hash(&compact)
    );
}
