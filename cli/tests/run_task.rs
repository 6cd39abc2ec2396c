//! `verinfer model make-tiny` + `verinfer run-task` end to end on the tiny models.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

const BIN: &str = env!("CARGO_BIN_EXE_verinfer");

fn verinfer(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run verinfer")
}

fn ok(output: Output) -> String {
    assert!(
        output.status.success(),
        "verinfer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 stdout")
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("run-task-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Makes the tiny models and returns `(models dir, sd digest, llama digest)`.
fn tiny_models(root: &Path) -> (PathBuf, String, String) {
    let models = root.join("models");
    let stdout = ok(verinfer(&[
        "model",
        "make-tiny",
        "--out",
        models.to_str().expect("utf-8"),
        "--seed",
        "3",
    ]));
    let digest_of = |dir: &str| {
        stdout
            .lines()
            .find(|l| l.ends_with(dir))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("no digest for {dir} in {stdout}"))
            .to_owned()
    };
    let (sd, llama) = (digest_of("tiny-sd"), digest_of("tiny-llama"));
    let digest = ok(verinfer(&[
        "model",
        "digest",
        models.join("tiny-sd").to_str().expect("utf-8"),
    ]));
    assert_eq!(digest.trim(), sd);
    (models, sd, llama)
}

fn run_task(args: &Path, models: &Path, out: &Path) -> Output {
    verinfer(&[
        "run-task",
        "--args",
        args.to_str().expect("utf-8"),
        "--models",
        models.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ])
}

#[test]
fn image_and_text_tasks_reproduce_their_digests() {
    let root = scratch("reproduce");
    let (models, sd, llama) = tiny_models(&root);
    let image_args = root.join("image.json");
    std::fs::write(
        &image_args,
        format!(r#"{{"kind":"image","version":2,"model":{{"name":"tiny-sd","digest":"{sd}"}},"prompt":"a red cabin in the snow","width":64,"height":64,"steps":3,"guidance_scale":5.0,"scheduler":"ddpm","num_images":2,"seed":42}}"#),
    )
    .expect("write args");
    let first = ok(run_task(&image_args, &models, &root.join("img-1")));
    let second = ok(run_task(&image_args, &models, &root.join("img-2")));
    assert_eq!(first, second);
    let hashes: Vec<&str> = first.lines().collect();
    assert_eq!(hashes.len(), 2, "{first}");
    assert!(
        hashes.iter().all(|h| h.len() == 18 && h.starts_with("0x")),
        "{first}"
    );
    for i in 0..2 {
        let name = format!("image-{i}.png");
        let a = std::fs::read(root.join("img-1").join(&name)).expect("png");
        assert_eq!(
            a,
            std::fs::read(root.join("img-2").join(&name)).expect("png"),
            "{name} differs"
        );
        assert_eq!(&a[1..4], b"PNG");
    }

    let text_args = root.join("text.json");
    std::fs::write(
        &text_args,
        format!(r#"{{"kind":"text","version":2,"model":{{"name":"tiny-llama","digest":"{llama}"}},"input":{{"prompt":"once upon a time"}},"max_tokens":16,"sampling":{{"mode":"sample","temperature":0.8,"top_k":20}},"seed":5}}"#),
    )
    .expect("write args");
    let first = ok(run_task(&text_args, &models, &root.join("txt-1")));
    let second = ok(run_task(&text_args, &models, &root.join("txt-2")));
    assert_eq!(first, second);
    assert!(
        first.trim().starts_with("0x") && first.trim().len() == 66,
        "{first}"
    );
    let output: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("txt-1/output.json")).expect("output.json"),
    )
    .expect("json");
    assert!(
        output["token_ids"]
            .as_array()
            .is_some_and(|ids| !ids.is_empty() && ids.len() <= 16),
        "{output}"
    );
    assert!(output["finish_reason"].is_string(), "{output}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn unknown_models_bad_args_and_missing_cuda_are_refused() {
    let root = scratch("refuse");
    let (models, _, _) = tiny_models(&root);
    let args = root.join("args.json");
    let unknown = format!("sha256:{}", "ab".repeat(32));
    std::fs::write(
        &args,
        format!(r#"{{"kind":"text","version":2,"model":{{"name":"elsewhere","digest":"{unknown}"}},"input":{{"prompt":"hi"}},"max_tokens":4,"sampling":{{"mode":"greedy"}},"seed":1}}"#),
    )
    .expect("write args");
    let output = run_task(&args, &models, &root.join("out"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not hold model elsewhere"), "{stderr}");

    std::fs::write(&args, r#"{"kind":"text","version":2}"#).expect("write args");
    let output = run_task(&args, &models, &root.join("out"));
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not valid task args"));

    if !cfg!(feature = "cuda") {
        // The device is opened after the args are read, so give it valid args and models.
        let text_args = root.join("greedy.json");
        let llama = ok(verinfer(&[
            "model",
            "digest",
            models.join("tiny-llama").to_str().expect("utf-8"),
        ]));
        std::fs::write(
            &text_args,
            format!(r#"{{"kind":"text","version":2,"model":{{"name":"tiny-llama","digest":"{}"}},"input":{{"prompt":"hi"}},"max_tokens":4,"sampling":{{"mode":"greedy"}},"seed":1}}"#, llama.trim()),
        )
        .expect("write args");
        let output = verinfer(&[
            "run-task",
            "--args",
            text_args.to_str().expect("utf-8"),
            "--models",
            models.to_str().expect("utf-8"),
            "--out",
            root.join("out").to_str().expect("utf-8"),
            "--device",
            "cuda:0",
        ]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--features cuda"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn compare_precision_prints_distances_per_image() {
    let root = scratch("compare-precision");
    let (models, _, _) = tiny_models(&root);
    let stdout = ok(verinfer(&[
        "model",
        "compare-precision",
        "--model",
        models.join("tiny-sd").to_str().expect("utf-8"),
        "--num-images",
        "2",
    ]));
    assert!(
        stdout.contains("f32-vs-f16") && stdout.contains("seed 1-vs-2"),
        "{stdout}"
    );
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| {
            cells
                .first()
                .is_some_and(|cell| cell.parse::<u32>().is_ok())
        })
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for cells in rows {
        // image, f32 pHash, f16 pHash, distance, seed distance
        let distance: u32 = cells[3].parse().expect("a distance");
        let across_seeds: u32 = cells[4].parse().expect("a distance");
        assert!(distance <= 64 && across_seeds <= 64, "{stdout}");
        assert!(
            across_seeds > distance,
            "another seed is another image, precision is not: {stdout}"
        );
    }

    let refused = verinfer(&[
        "model",
        "compare-precision",
        "--model",
        root.join("missing").to_str().expect("utf-8"),
    ]);
    assert!(!refused.status.success());
}
