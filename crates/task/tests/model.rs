//! Model digests, the digest cache and the model store.

use std::{
    fs::{self, File},
    path::Path,
    time::{Duration, SystemTime},
};

use sha2::{Digest, Sha256};
use verinfer_task::{
    DIGEST_CACHE_FILE, ModelDigest, ModelError, ModelRef, ModelStore, model_digest,
    model_digest_cached,
};

fn write(dir: &Path, relative: &str, content: &[u8]) {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// A small model directory plus files the digest must ignore.
fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "config.json", br#"{"hidden_size":8}"#);
    write(dir.path(), "model.safetensors", &[7u8; 1000]);
    write(dir.path(), "tokenizer/tokenizer.model", b"spm");
    write(dir.path(), "tokenizer/vocab.txt", b"a\nb\n");
    write(dir.path(), "README.md", b"ignored: not a model file");
    write(
        dir.path(),
        "pytorch_model.bin",
        b"ignored: not a model file",
    );
    write(dir.path(), ".hidden.json", b"ignored: hidden");
    write(dir.path(), ".git/config.json", b"ignored: hidden directory");
    dir
}

/// The documented algorithm, written out independently of the crate's walker.
fn expected_digest(files: &[(&str, &[u8])]) -> ModelDigest {
    let mut sorted = files.to_vec();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    for (path, content) in sorted {
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update((content.len() as u64).to_be_bytes());
        hasher.update(content);
    }
    ModelDigest::new(hasher.finalize().into())
}

fn set_mtime(path: &Path, time: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[test]
fn digest_follows_the_documented_listing() {
    let dir = model_dir();
    let expected = expected_digest(&[
        ("tokenizer/vocab.txt", b"a\nb\n"),
        ("model.safetensors", &[7u8; 1000]),
        ("config.json", br#"{"hidden_size":8}"#),
        ("tokenizer/tokenizer.model", b"spm"),
    ]);
    assert_eq!(model_digest(dir.path()).unwrap(), expected);
    assert_eq!(
        model_digest(dir.path()).unwrap(),
        expected,
        "stable across calls"
    );
}

#[test]
fn sorting_is_bytewise_over_the_whole_relative_path() {
    // '.' (0x2e) sorts before '/' (0x2f): "a.json" precedes "a/b.json" although a directory
    // walk would visit "a/" first.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a/b.json", b"1");
    write(dir.path(), "a.json", b"2");
    write(dir.path(), "B.json", b"3");
    let expected = expected_digest(&[("B.json", b"3"), ("a.json", b"2"), ("a/b.json", b"1")]);
    assert_eq!(model_digest(dir.path()).unwrap(), expected);
}

#[test]
fn digest_changes_with_content_names_and_membership() {
    let dir = model_dir();
    let original = model_digest(dir.path()).unwrap();

    write(dir.path(), "notes.md", b"not a model file");
    write(dir.path(), ".cache/x.safetensors", b"hidden");
    assert_eq!(
        model_digest(dir.path()).unwrap(),
        original,
        "ignored files do not count"
    );

    write(dir.path(), "config.json", br#"{"hidden_size":9}"#);
    let edited = model_digest(dir.path()).unwrap();
    assert_ne!(edited, original, "same size, different content");

    fs::rename(
        dir.path().join("config.json"),
        dir.path().join("config2.json"),
    )
    .unwrap();
    let renamed = model_digest(dir.path()).unwrap();
    assert_ne!(renamed, edited);

    write(dir.path(), "generation_config.json", b"{}");
    assert_ne!(
        model_digest(dir.path()).unwrap(),
        renamed,
        "an added file counts"
    );
}

#[test]
fn path_and_content_boundaries_are_unambiguous() {
    // Without the 0x00 separator and length these two would hash the same byte stream.
    let one = tempfile::tempdir().unwrap();
    write(one.path(), "a.txt", b"b.txtxyz");
    let two = tempfile::tempdir().unwrap();
    write(two.path(), "a.txtb.txt", b"xyz");
    assert_ne!(
        model_digest(one.path()).unwrap(),
        model_digest(two.path()).unwrap()
    );
}

#[test]
fn empty_or_missing_directories_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "README.md", b"no model here");
    let error = model_digest(dir.path()).unwrap_err();
    assert!(
        matches!(error, ModelError::NoModelFiles { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("holds no model files"),
        "{error}"
    );

    let missing = dir.path().join("missing");
    let error = model_digest(&missing).unwrap_err();
    assert!(matches!(error, ModelError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("missing"), "{error}");
}

#[cfg(unix)]
#[test]
fn symlinks_are_followed_and_cycles_rejected() {
    use std::os::unix::fs::symlink;
    let blobs = tempfile::tempdir().unwrap();
    write(blobs.path(), "blob-1", br#"{"a":1}"#);
    let dir = tempfile::tempdir().unwrap();
    symlink(blobs.path().join("blob-1"), dir.path().join("config.json")).unwrap();
    assert_eq!(
        model_digest(dir.path()).unwrap(),
        expected_digest(&[("config.json", br#"{"a":1}"#)])
    );

    symlink(dir.path(), dir.path().join("loop")).unwrap();
    let error = model_digest(dir.path()).unwrap_err();
    assert!(
        matches!(error, ModelError::SymlinkCycle { .. }),
        "{error:?}"
    );
}

#[test]
fn a_model_ref_from_a_directory_is_named_after_it_and_carries_its_digest() {
    let dir = model_dir();
    let model = verinfer_task::ModelRef::from_dir(dir.path()).unwrap();
    let name = dir.path().file_name().unwrap().to_string_lossy();
    assert_eq!(model.name, name);
    assert_eq!(model.digest, model_digest(dir.path()).unwrap().to_string());
    let missing = dir.path().join("missing");
    assert!(verinfer_task::ModelRef::from_dir(&missing).is_err());
}

#[test]
fn cache_is_written_and_reused() {
    let dir = model_dir();
    let digest = model_digest_cached(dir.path()).unwrap();
    assert_eq!(digest, model_digest(dir.path()).unwrap());

    let cache_path = dir.path().join(DIGEST_CACHE_FILE);
    let cache: serde_json::Value = serde_json::from_slice(&fs::read(&cache_path).unwrap()).unwrap();
    assert_eq!(cache["digest"], digest.to_string());
    assert_eq!(cache["files"].as_array().unwrap().len(), 4);
    assert_eq!(
        model_digest(dir.path()).unwrap(),
        digest,
        "the cache file is not part of the digest"
    );

    // Prove the cache is what answers: plant a different digest with matching stamps.
    let planted = ModelDigest::new([0xab; 32]);
    let mut tampered = cache.clone();
    tampered["digest"] = serde_json::json!(planted.to_string());
    fs::write(&cache_path, serde_json::to_vec(&tampered).unwrap()).unwrap();
    assert_eq!(model_digest_cached(dir.path()).unwrap(), planted);
}

#[test]
fn cache_is_invalidated_by_a_changed_file() {
    let dir = model_dir();
    let config = dir.path().join("config.json");
    set_mtime(
        &config,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    );
    let before = model_digest_cached(dir.path()).unwrap();

    // Same size, new content, new mtime: only the mtime tells.
    write(dir.path(), "config.json", br#"{"hidden_size":9}"#);
    set_mtime(
        &config,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_001),
    );
    let after = model_digest_cached(dir.path()).unwrap();
    assert_ne!(after, before);
    assert_eq!(after, model_digest(dir.path()).unwrap());

    // Size change alone, with the mtime put back.
    write(dir.path(), "config.json", br#"{"hidden_size":10}"#);
    set_mtime(
        &config,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_001),
    );
    assert_eq!(
        model_digest_cached(dir.path()).unwrap(),
        model_digest(dir.path()).unwrap()
    );

    // A new file and a removed file.
    write(dir.path(), "extra.json", b"{}");
    assert_eq!(
        model_digest_cached(dir.path()).unwrap(),
        model_digest(dir.path()).unwrap()
    );
    fs::remove_file(dir.path().join("extra.json")).unwrap();
    fs::remove_file(dir.path().join("tokenizer/vocab.txt")).unwrap();
    assert_eq!(
        model_digest_cached(dir.path()).unwrap(),
        model_digest(dir.path()).unwrap()
    );
}

#[test]
fn corrupt_cache_is_ignored_and_rewritten() {
    let dir = model_dir();
    let digest = model_digest(dir.path()).unwrap();
    let cache_path = dir.path().join(DIGEST_CACHE_FILE);
    for garbage in [
        &b"not json"[..],
        b"{}",
        b"{\"version\":1,\"digest\":\"sha256:zz\",\"files\":[]}",
        b"",
    ] {
        fs::write(&cache_path, garbage).unwrap();
        assert_eq!(model_digest_cached(dir.path()).unwrap(), digest);
        let rewritten: serde_json::Value =
            serde_json::from_slice(&fs::read(&cache_path).unwrap()).unwrap();
        assert_eq!(rewritten["digest"], digest.to_string());
    }
    // A cache from a future format version is not trusted either.
    let mut future: serde_json::Value =
        serde_json::from_slice(&fs::read(&cache_path).unwrap()).unwrap();
    future["version"] = serde_json::json!(2);
    future["digest"] = serde_json::json!(ModelDigest::new([1; 32]).to_string());
    fs::write(&cache_path, serde_json::to_vec(&future).unwrap()).unwrap();
    assert_eq!(model_digest_cached(dir.path()).unwrap(), digest);
}

#[cfg(unix)]
#[test]
fn unwritable_cache_is_not_an_error() {
    // A directory where the cache path is taken by a directory: writing must fail quietly.
    let dir = model_dir();
    fs::create_dir(dir.path().join(DIGEST_CACHE_FILE)).unwrap();
    assert_eq!(
        model_digest_cached(dir.path()).unwrap(),
        model_digest(dir.path()).unwrap()
    );
}

#[test]
fn model_digest_strings_are_strict() {
    let text = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let digest: ModelDigest = text.parse().unwrap();
    assert_eq!(digest.to_string(), text);
    assert_eq!(digest.as_bytes()[1], 0x11);
    assert_eq!(
        serde_json::to_string(&digest).unwrap(),
        format!("\"{text}\"")
    );
    assert_eq!(
        serde_json::from_str::<ModelDigest>(&format!("\"{text}\"")).unwrap(),
        digest
    );
    for bad in [
        &text[7..],
        &text.to_uppercase(),
        &text.replace("sha256:", "SHA256:"),
        &text[..text.len() - 2],
        &format!("{text}00"),
        &text.replace('a', "g"),
        &format!(" {text}"),
    ] {
        let error = bad.parse::<ModelDigest>().unwrap_err();
        assert!(
            error.to_string().contains("is not a model digest"),
            "{error}"
        );
    }
}

#[test]
fn store_resolves_held_models_by_digest() {
    let root_a = tempfile::tempdir().unwrap();
    let root_b = tempfile::tempdir().unwrap();
    write(&root_a.path().join("sd"), "unet.safetensors", b"unet");
    write(
        &root_a.path().join("empty"),
        "README.md",
        b"no model files: skipped",
    );
    write(
        &root_a.path().join(".trash"),
        "old.safetensors",
        b"hidden: skipped",
    );
    write(
        root_a.path(),
        "loose.safetensors",
        b"not in a model directory: skipped",
    );
    write(&root_b.path().join("llm"), "model.safetensors", b"llm");
    write(&root_b.path().join("llm-copy"), "model.safetensors", b"llm");

    let store = ModelStore::open([root_a.path(), root_b.path()]).unwrap();
    assert_eq!(store.len(), 2, "{:?}", store.models().collect::<Vec<_>>());

    let sd = model_digest(&root_a.path().join("sd")).unwrap();
    let llm = model_digest(&root_b.path().join("llm")).unwrap();
    let resolve = |digest: ModelDigest| {
        store
            .resolve(&ModelRef {
                name: "any name".into(),
                digest: digest.to_string(),
            })
            .unwrap()
            .to_owned()
    };
    assert_eq!(resolve(sd), root_a.path().join("sd"));
    assert_eq!(
        resolve(llm),
        root_b.path().join("llm"),
        "first copy in sorted order wins"
    );
    assert_eq!(store.get(&sd), Some(root_a.path().join("sd").as_path()));
    assert!(
        root_a.path().join("sd").join(DIGEST_CACHE_FILE).exists(),
        "the store uses the cache"
    );
}

#[test]
fn store_reports_models_it_does_not_hold() {
    let root = tempfile::tempdir().unwrap();
    write(&root.path().join("sd"), "unet.safetensors", b"unet");
    let store = ModelStore::open([root.path()]).unwrap();
    let wanted = ModelRef {
        name: "llama-3-8b".into(),
        digest: "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into(),
    };
    let error = store.resolve(&wanted).unwrap_err();
    assert!(
        matches!(error, ModelError::ModelNotHeld { .. }),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "this node does not hold model llama-3-8b (sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff)"
    );

    let malformed = ModelRef {
        name: "x".into(),
        digest: "sha256:nope".into(),
    };
    assert!(matches!(
        store.resolve(&malformed).unwrap_err(),
        ModelError::BadDigest { .. }
    ));

    let missing_root = root.path().join("nope");
    let error = ModelStore::open([&missing_root]).unwrap_err();
    assert!(error.to_string().contains("nope"), "{error}");
    assert!(ModelStore::open(Vec::<&Path>::new()).unwrap().is_empty());
}
