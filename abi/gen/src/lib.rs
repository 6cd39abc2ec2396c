//! Generates `abi/contracts/*.json`, the contract artifacts that `verinfer-abi` builds its alloy
//! bindings from, out of the Solidity sources with forge.
//!
//! A build-time tool: it depends on no other verinfer crate and nothing of alloy.
//!
//! The one place that decides what the committed JSON looks like: `verinfer-abi`'s build script
//! uses it to regenerate stale files, and `gen-abi --check` (run by `scripts/check-abi.sh` in CI)
//! uses it to prove the committed files are current.
//!
//! Each artifact keeps only what alloy's `sol!` reads from a Foundry artifact — `abi`,
//! `bytecode.object`, `deployedBytecode.object` — with object keys sorted and ABI items in a fixed
//! order, so that a diff shows only real interface or bytecode changes. `SOURCES.sha256` (the
//! `sha256sum` format) records the hash of every input the artifacts were built from; a build
//! compares it with the working tree to know whether regeneration is needed without running forge.

use std::{
    cmp::Ordering,
    fmt::Write as _,
    fs,
    io::{self, Read as _},
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub mod foundry;

/// Directory of the committed artifacts, relative to the repository root.
pub const CONTRACTS_DIR: &str = "abi/contracts";
/// Name of the sources manifest inside [`CONTRACTS_DIR`].
pub const SOURCES_FILE: &str = "SOURCES.sha256";
/// What to tell someone whose committed artifacts are stale.
pub const STALE_HINT: &str =
    "abi/contracts/*.json is stale: run cargo build -p verinfer-abi and commit";

/// One contract whose artifact is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractSpec {
    /// Contract name; the artifact is committed as `<name>.json`.
    pub name: &'static str,
    /// Source file declaring it, relative to the repository root.
    pub source: &'static str,
    /// Whether to keep the creation and runtime bytecode (`sol!` then generates `deploy`).
    /// Interfaces have none.
    pub with_bytecode: bool,
    /// Another contract (source file, contract name) whose ABI is merged into this one's: the
    /// contract forwards the calls it does not implement to it (Verinfer's extension), so its
    /// users call those functions at this contract's address.
    pub merge_abi_from: Option<(&'static str, &'static str)>,
}

impl ContractSpec {
    /// File name of the committed artifact.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.name)
    }
}

/// The committed artifacts.
pub const CONTRACTS: [ContractSpec; 3] = [
    ContractSpec {
        name: "Verinfer",
        source: "contracts/src/Verinfer.sol",
        with_bytecode: true,
        merge_abi_from: Some(("contracts/src/VerinferExtension.sol", "VerinferExtension")),
    },
    ContractSpec {
        name: "MockStakingToken",
        source: "contracts/src/mocks/MockStakingToken.sol",
        with_bytecode: true,
        merge_abi_from: None,
    },
    ContractSpec {
        name: "IERC20",
        source: "node_modules/@openzeppelin/contracts/token/ERC20/IERC20.sol",
        with_bytecode: false,
        merge_abi_from: None,
    },
];

/// Files (besides `contracts/src/**/*.sol`) whose content decides the artifacts: compiler
/// settings, the npm lockfile pinning forge, solc and OpenZeppelin, and the solc-js shim.
const EXTRA_INPUTS: [&str; 3] = ["foundry.toml", "package-lock.json", "tools/solc/solc"];
/// Directory whose Solidity files are all inputs.
const SOURCES_DIR: &str = "contracts/src";

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A file or directory could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Neither the npm-installed forge nor one on `PATH` exists.
    #[error("{0} (and no forge on PATH)")]
    ForgeNotFound(#[source] foundry::ToolNotFound),
    /// forge could not be started.
    #[error("could not run {}: {source}", forge.display())]
    ForgeSpawn {
        /// The forge binary.
        forge: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// forge ran and failed (typically a Solidity compile error).
    #[error("`forge build` failed ({status}):\n{output}")]
    ForgeFailed {
        /// Exit status.
        status: std::process::ExitStatus,
        /// forge's stdout and stderr.
        output: String,
    },
    /// A Foundry artifact is not what was expected.
    #[error("bad artifact {}: {reason}", path.display())]
    BadArtifact {
        /// The artifact.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> GenError + 'a {
    move |source| GenError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A generated file, ready to compare with or write over the committed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    /// File name inside [`CONTRACTS_DIR`].
    pub name: String,
    /// Full contents.
    pub contents: String,
}

/// The full set of generated files: one artifact per [`CONTRACTS`] entry and the sources manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// The files, artifacts first, manifest last.
    pub files: Vec<GeneratedFile>,
}

/// The repository whose contracts are compiled.
#[derive(Debug, Clone)]
pub struct Repo {
    root: PathBuf,
}

impl Repo {
    /// A repository rooted at `root` (the directory holding `foundry.toml`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory of the committed artifacts.
    pub fn contracts_dir(&self) -> PathBuf {
        self.root.join(CONTRACTS_DIR)
    }

    /// Paths a build script should watch (`cargo:rerun-if-changed`): every input and the
    /// committed artifacts. Only existing paths, since cargo reruns for a missing one every time.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths = vec![self.root.join(SOURCES_DIR), self.contracts_dir()];
        paths.extend(EXTRA_INPUTS.iter().map(|p| self.root.join(p)));
        paths.retain(|p| p.exists());
        paths
    }

    /// Every input of the artifacts, relative to the root with `/` separators, sorted.
    pub fn input_paths(&self) -> Result<Vec<String>, GenError> {
        let mut paths = Vec::new();
        collect_solidity(&self.root, Path::new(SOURCES_DIR), &mut paths)?;
        paths.sort();
        paths.extend(EXTRA_INPUTS.iter().map(|p| (*p).to_owned()));
        Ok(paths)
    }

    /// The sources manifest of the working tree, in `sha256sum` format (`<hex>  <path>` lines).
    pub fn sources_manifest(&self) -> Result<String, GenError> {
        let mut manifest = String::new();
        for rel in self.input_paths()? {
            let path = self.root.join(&rel);
            let hash = sha256_file(&path)?;
            // Writing into a String cannot fail.
            let _ = writeln!(manifest, "{hash}  {rel}");
        }
        Ok(manifest)
    }

    /// The committed sources manifest, `None` when there is none yet.
    pub fn recorded_manifest(&self) -> Result<Option<String>, GenError> {
        let path = self.contracts_dir().join(SOURCES_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("reading", &path)(e)),
        }
    }

    /// The forge to compile with: the npm-installed one (see [`foundry::tool`]), else one on `PATH`.
    pub fn find_forge(&self) -> Result<PathBuf, GenError> {
        let not_found = match foundry::tool(&self.root, foundry::FoundryTool::Forge) {
            Ok(path) => return Ok(path),
            Err(not_found) => not_found,
        };
        let on_path = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .map(|dir| dir.join("forge"))
            .find(|candidate| candidate.is_file());
        on_path.ok_or(GenError::ForgeNotFound(not_found))
    }

    /// Compiles the contracts with `forge` into `scratch` (its own out and cache directories, so
    /// the project's `out/` and `cache/` are never touched) and shapes the artifacts.
    ///
    /// The manifest is hashed before compiling: if a source changes meanwhile, the next build
    /// sees a mismatch and regenerates, so the recorded hashes never claim newer sources.
    pub fn generate(&self, forge: &Path, scratch: &Path) -> Result<Generated, GenError> {
        let manifest = self.sources_manifest()?;
        let out = scratch.join("out");
        let cache = scratch.join("cache");
        // Never read artifacts of an earlier run: npm's `.bin/forge` launcher exits 0 even when
        // forge fails, so a missing artifact is the only reliable failure signal there.
        for dir in [&out, &cache] {
            match fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("clearing", dir)(e)),
            }
        }
        let mut command = Command::new(forge);
        command
            .current_dir(&self.root) // foundry.toml names solc relative to the root
            .arg("build")
            .arg("--root")
            .arg(&self.root)
            .arg("--out")
            .arg(&out)
            .arg("--cache-path")
            .arg(&cache)
            .args(CONTRACTS.iter().map(|c| c.source))
            .args(
                CONTRACTS
                    .iter()
                    .filter_map(|c| c.merge_abi_from.map(|(source, _)| source)),
            );
        // Environment overrides of foundry.toml would make the output depend on the caller.
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("FOUNDRY_") || key_str.starts_with("DAPP_") {
                command.env_remove(&key);
            }
        }
        let output = command.output().map_err(|source| GenError::ForgeSpawn {
            forge: forge.to_path_buf(),
            source,
        })?;
        let artifact_path = |spec: &ContractSpec| {
            let source_file = Path::new(spec.source).file_name().unwrap_or_default();
            out.join(source_file).join(spec.file_name())
        };
        let merged_path = |(source, name): (&str, &str)| {
            let source_file = Path::new(source).file_name().unwrap_or_default();
            out.join(source_file).join(format!("{name}.json"))
        };
        let all_built = CONTRACTS.iter().all(|spec| {
            artifact_path(spec).is_file()
                && spec
                    .merge_abi_from
                    .is_none_or(|from| merged_path(from).is_file())
        });
        if !output.status.success() || !all_built {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            return Err(GenError::ForgeFailed {
                status: output.status,
                output: text,
            });
        }

        let mut files = Vec::with_capacity(CONTRACTS.len() + 1);
        for spec in &CONTRACTS {
            let path = artifact_path(spec);
            let text =
                fs::read_to_string(&path).map_err(io_err("reading forge artifact", &path))?;
            let mut artifact: Value =
                serde_json::from_str(&text).map_err(|e| GenError::BadArtifact {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            if let Some(from) = spec.merge_abi_from {
                let from_path = merged_path(from);
                let from_text = fs::read_to_string(&from_path)
                    .map_err(io_err("reading forge artifact", &from_path))?;
                let from_artifact: Value =
                    serde_json::from_str(&from_text).map_err(|e| GenError::BadArtifact {
                        path: from_path.clone(),
                        reason: e.to_string(),
                    })?;
                merge_abi(&mut artifact, &from_artifact).map_err(|reason| {
                    GenError::BadArtifact {
                        path: from_path,
                        reason,
                    }
                })?;
            }
            let contents = shape_artifact(&artifact, spec.with_bytecode)
                .map_err(|reason| GenError::BadArtifact { path, reason })?;
            files.push(GeneratedFile {
                name: spec.file_name(),
                contents,
            });
        }
        files.push(GeneratedFile {
            name: SOURCES_FILE.to_owned(),
            contents: manifest,
        });
        Ok(Generated { files })
    }

    /// Names of committed files that differ from `generated` or are missing, and of JSON files in
    /// [`CONTRACTS_DIR`] that generation does not produce.
    pub fn stale_files(&self, generated: &Generated) -> Result<Vec<String>, GenError> {
        let dir = self.contracts_dir();
        let mut stale = Vec::new();
        for file in &generated.files {
            if read_if_exists(&dir.join(&file.name))?.as_deref() != Some(file.contents.as_str()) {
                stale.push(file.name.clone());
            }
        }
        if dir.is_dir() {
            for entry in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
                let entry = entry.map_err(io_err("listing", &dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") && !generated.files.iter().any(|f| f.name == name) {
                    stale.push(name);
                }
            }
        }
        Ok(stale)
    }

    /// Writes the generated files whose contents differ from the committed ones (atomically, by
    /// rename) and returns their names; unchanged files are left alone so git stays clean.
    pub fn write(&self, generated: &Generated) -> Result<Vec<String>, GenError> {
        let dir = self.contracts_dir();
        fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        let mut written = Vec::new();
        for file in &generated.files {
            let path = dir.join(&file.name);
            if read_if_exists(&path)?.as_deref() == Some(file.contents.as_str()) {
                continue;
            }
            let tmp = dir.join(format!(".{}.tmp-{}", file.name, std::process::id()));
            fs::write(&tmp, &file.contents).map_err(io_err("writing", &tmp))?;
            fs::rename(&tmp, &path).map_err(io_err("replacing", &path))?;
            written.push(file.name.clone());
        }
        Ok(written)
    }
}

/// Paths whose lines differ between two manifests (changed, added or removed inputs).
pub fn manifest_changes(recorded: &str, current: &str) -> Vec<String> {
    let parse = |text: &str| -> Vec<(String, String)> {
        text.lines()
            .filter_map(|line| line.split_once("  "))
            .map(|(hash, path)| (path.to_owned(), hash.to_owned()))
            .collect()
    };
    let (recorded, current) = (parse(recorded), parse(current));
    let mut changed: Vec<String> = current
        .iter()
        .filter(|entry| !recorded.contains(entry))
        .chain(
            recorded
                .iter()
                .filter(|(path, _)| !current.iter().any(|(p, _)| p == path)),
        )
        .map(|(path, _)| path.clone())
        .collect();
    changed.sort();
    changed.dedup();
    changed
}

/// Reduces a Foundry artifact to what `sol!` reads, in a canonical, pretty-printed form.
///
/// Errors name what is missing or malformed; unlinked library placeholders are rejected since
/// `sol!` cannot deploy such bytecode.
pub fn shape_artifact(artifact: &Value, with_bytecode: bool) -> Result<String, String> {
    let abi = artifact
        .get("abi")
        .and_then(Value::as_array)
        .ok_or("no `abi` array")?;
    let mut items: Vec<Value> = abi.iter().map(canonical).collect();
    items.sort_by(compare_abi_items);

    let mut shaped = Map::new();
    shaped.insert("abi".to_owned(), Value::Array(items));
    if with_bytecode {
        for field in ["bytecode", "deployedBytecode"] {
            let object = artifact
                .get(field)
                .and_then(|b| b.get("object"))
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no `{field}.object` string"))?;
            let hex = object
                .strip_prefix("0x")
                .ok_or_else(|| format!("`{field}.object` lacks 0x"))?;
            if hex.is_empty() {
                return Err(format!(
                    "`{field}.object` is empty (abstract contract or interface?)"
                ));
            }
            if hex.contains("__$") {
                return Err(format!(
                    "`{field}.object` has unlinked library placeholders"
                ));
            }
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("`{field}.object` is not hex"));
            }
            let mut wrapper = Map::new();
            wrapper.insert(
                "object".to_owned(),
                Value::String(object.to_ascii_lowercase()),
            );
            shaped.insert(field.to_owned(), Value::Object(wrapper));
        }
    }
    let mut text = serde_json::to_string_pretty(&canonical(&Value::Object(shaped)))
        .map_err(|e| format!("serialising: {e}"))?;
    text.push('\n');
    Ok(text)
}

/// Adds to `artifact`'s ABI the functions, events and errors of `from` it lacks (the same item,
/// inherited by both, is kept once; where both declare a signature, `artifact`'s own wins, as it does
/// for calls). Constructors, fallbacks and receives stay `artifact`'s own.
pub fn merge_abi(artifact: &mut Value, from: &Value) -> Result<(), String> {
    let extra: Vec<Value> = from
        .get("abi")
        .and_then(Value::as_array)
        .ok_or("no `abi` array")?
        .iter()
        .filter(|item| {
            matches!(
                item.get("type").and_then(Value::as_str),
                Some("function" | "event" | "error")
            )
        })
        .map(canonical)
        .collect();
    let abi = artifact
        .get_mut("abi")
        .and_then(Value::as_array_mut)
        .ok_or("no `abi` array")?;
    let key = |item: &Value| {
        let inputs: Vec<String> = item
            .get("inputs")
            .and_then(Value::as_array)
            .map(|inputs| {
                inputs
                    .iter()
                    .map(|i| {
                        i.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        (
            item.get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            item.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            inputs,
        )
    };
    for item in extra {
        let k = key(&item);
        // The same signature in both: calls reach the contract's own function, never the
        // extension's, so its item is the one users see.
        if !abi.iter().any(|existing| key(existing) == k) {
            abi.push(item);
        }
    }
    Ok(())
}

/// `value` with every object's keys in sorted order, whichever map serde_json was built with.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// Constructor, functions, events, errors, then the rest; by name within a kind, overloads by
/// their full JSON.
fn compare_abi_items(a: &Value, b: &Value) -> Ordering {
    let rank = |item: &Value| match item.get("type").and_then(Value::as_str) {
        Some("constructor") => 0,
        Some("function") => 1,
        Some("event") => 2,
        Some("error") => 3,
        Some("fallback") => 4,
        Some("receive") => 5,
        _ => 6,
    };
    let name = |item: &Value| {
        item.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    rank(a)
        .cmp(&rank(b))
        .then_with(|| name(a).cmp(&name(b)))
        .then_with(|| a.to_string().cmp(&b.to_string()))
}

fn collect_solidity(root: &Path, rel: &Path, out: &mut Vec<String>) -> Result<(), GenError> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io_err("listing", &dir))? {
        let entry = entry.map_err(io_err("listing", &dir))?;
        let file_type = entry
            .file_type()
            .map_err(io_err("inspecting", &entry.path()))?;
        let child = rel.join(entry.file_name());
        if file_type.is_dir() {
            collect_solidity(root, &child, out)?;
        } else if child.extension().is_some_and(|ext| ext == "sol") {
            let parts: Vec<String> = child
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, GenError> {
    let mut file = fs::File::open(path).map_err(io_err("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(io_err("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

fn read_if_exists(path: &Path) -> Result<Option<String>, GenError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("reading", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn artifact() -> Value {
        json!({
            "abi": [
                {"type": "error", "name": "B", "inputs": []},
                {"type": "function", "name": "z", "stateMutability": "view", "inputs": [], "outputs": []},
                {"type": "constructor", "stateMutability": "nonpayable", "inputs": []},
                {"type": "function", "name": "a", "inputs": [], "outputs": [], "stateMutability": "pure"}
            ],
            "bytecode": {"object": "0x60AB", "sourceMap": "x", "linkReferences": {}},
            "deployedBytecode": {"object": "0x60ab", "sourceMap": "y"},
            "metadata": {"compiler": "0.8.28"},
            "methodIdentifiers": {}
        })
    }

    #[test]
    fn shaping_keeps_only_what_sol_reads_in_canonical_order() {
        let text = shape_artifact(&artifact(), true).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["abi", "bytecode", "deployedBytecode"]);
        assert_eq!(value["bytecode"], json!({"object": "0x60ab"}));
        let order: Vec<&str> = value["abi"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.get("name").and_then(Value::as_str).unwrap_or("<ctor>"))
            .collect();
        assert_eq!(order, ["<ctor>", "a", "z", "B"]);
        // Keys inside items are sorted too.
        let function_a = r#"    {
      "inputs": [],
      "name": "a",
      "outputs": [],
      "stateMutability": "pure",
      "type": "function"
    },"#;
        assert!(text.contains(function_a), "{text}");
        assert!(text.ends_with("}\n"));
        // Input order does not matter.
        let mut reversed = artifact();
        reversed["abi"].as_array_mut().unwrap().reverse();
        assert_eq!(shape_artifact(&reversed, true).unwrap(), text);
    }

    #[test]
    fn interfaces_drop_bytecode() {
        let mut interface = artifact();
        interface["bytecode"]["object"] = json!("0x");
        let value: Value =
            serde_json::from_str(&shape_artifact(&interface, false).unwrap()).unwrap();
        assert!(value.get("bytecode").is_none() && value.get("deployedBytecode").is_none());
    }

    #[test]
    fn bad_bytecode_is_rejected_with_a_reason() {
        let mut empty = artifact();
        empty["bytecode"]["object"] = json!("0x");
        assert!(shape_artifact(&empty, true).unwrap_err().contains("empty"));
        let mut unlinked = artifact();
        unlinked["deployedBytecode"]["object"] = json!("0x60__$abc$__");
        assert!(
            shape_artifact(&unlinked, true)
                .unwrap_err()
                .contains("unlinked")
        );
        let mut missing = artifact();
        missing.as_object_mut().unwrap().remove("abi");
        assert_eq!(
            shape_artifact(&missing, true).unwrap_err(),
            "no `abi` array"
        );
    }

    #[test]
    fn manifest_changes_lists_changed_added_and_removed_paths() {
        let recorded = "aa  a.sol\nbb  b.sol\ncc  c.sol\n";
        let current = "aa  a.sol\nb2  b.sol\ndd  d.sol\n";
        assert_eq!(
            manifest_changes(recorded, current),
            ["b.sol", "c.sol", "d.sol"]
        );
        assert!(manifest_changes(recorded, recorded).is_empty());
    }

    #[test]
    fn manifest_covers_every_solidity_source_and_the_toolchain_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("contracts/src/mocks")).unwrap();
        fs::create_dir_all(root.join("tools/solc")).unwrap();
        fs::write(root.join("contracts/src/B.sol"), "contract B {}").unwrap();
        fs::write(root.join("contracts/src/mocks/A.sol"), "contract A {}").unwrap();
        fs::write(root.join("contracts/src/notes.md"), "ignored").unwrap();
        for extra in EXTRA_INPUTS {
            fs::write(root.join(extra), extra).unwrap();
        }
        let repo = Repo::new(root);
        assert_eq!(
            repo.input_paths().unwrap(),
            [
                "contracts/src/B.sol",
                "contracts/src/mocks/A.sol",
                "foundry.toml",
                "package-lock.json",
                "tools/solc/solc"
            ]
        );
        let before = repo.sources_manifest().unwrap();
        assert!(before.starts_with(
            // sha256("contract B {}")
            &format!("{}  contracts/src/B.sol\n", sha256_hex(b"contract B {}"))
        ));
        fs::write(root.join("contracts/src/mocks/A.sol"), "contract A { }").unwrap();
        let after = repo.sources_manifest().unwrap();
        assert_eq!(
            manifest_changes(&before, &after),
            ["contracts/src/mocks/A.sol"]
        );
    }

    #[test]
    fn write_touches_only_changed_files_and_stale_files_reports_them() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new(dir.path());
        let generated = Generated {
            files: vec![
                GeneratedFile {
                    name: "X.json".into(),
                    contents: "{}\n".into(),
                },
                GeneratedFile {
                    name: SOURCES_FILE.into(),
                    contents: "aa  x.sol\n".into(),
                },
            ],
        };
        assert_eq!(
            repo.stale_files(&generated).unwrap(),
            ["X.json", SOURCES_FILE]
        );
        assert_eq!(repo.write(&generated).unwrap(), ["X.json", SOURCES_FILE]);
        assert!(repo.stale_files(&generated).unwrap().is_empty());
        assert!(repo.write(&generated).unwrap().is_empty());

        fs::write(repo.contracts_dir().join("Old.json"), "{}").unwrap();
        fs::write(repo.contracts_dir().join("X.json"), "{ }").unwrap();
        assert_eq!(
            repo.stale_files(&generated).unwrap(),
            ["X.json", "Old.json"]
        );
        assert_eq!(repo.write(&generated).unwrap(), ["X.json"]);
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
