//! The explorer in a real browser: headless Chromium driven through `chromedriver` (WebDriver,
//! with `fantoccini`) against `verinfer devnet --keep-running`.
//!
//! - The demo image task's page shows every selected node's images (each one loaded from the
//!   relayer's verified blobs: `naturalWidth > 0`) and the pairwise distances against the
//!   threshold; the keyboard reaches the skip link and the search box.
//! - After a `--cheater` demo, the cheater's node page lists its slash with a link to the task.
//!
//! Screenshots go to `$VERINFER_SCREENSHOTS` (default `target/explorer-screenshots`); the folder
//! is printed. Needs `npm ci` (anvil, forge) and Debian's `chromium` and `chromium-driver`
//! (`/usr/bin/chromium`, `/usr/bin/chromedriver`; `VERINFER_CHROMIUM` and
//! `VERINFER_CHROMEDRIVER` point elsewhere). Without a browser the tests say why and pass,
//! unless `VERINFER_REQUIRE_BROWSER=1` (CI), where they fail.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

mod support;

use support::{KeptDevnet, Proc, free_port};

use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    key::Key,
};
use serde_json::{Value, json};

/// One devnet (and one browser) at a time: each one is CPU-heavy on a small machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The desktop window and the phone-sized one of the extra screenshot.
const DESKTOP: (u32, u32) = (1280, 1600);
const PHONE: (u32, u32) = (390, 844);

/// The browser's pieces, found on this machine.
struct Browser {
    chromium: PathBuf,
    chromedriver: PathBuf,
}

fn find_program(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .chain([
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/lib/chromium"),
            ])
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// The browser, or `None` (the test is skipped) when it is missing; with
/// `VERINFER_REQUIRE_BROWSER=1` a missing browser fails the test.
fn browser() -> Option<Browser> {
    let chromium = find_program("VERINFER_CHROMIUM", &["chromium", "chromium-browser"]);
    let chromedriver = find_program("VERINFER_CHROMEDRIVER", &["chromedriver"]);
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => Some(Browser {
            chromium,
            chromedriver,
        }),
        (chromium, chromedriver) => {
            let missing = [
                chromium.is_none().then_some("chromium (VERINFER_CHROMIUM)"),
                chromedriver
                    .is_none()
                    .then_some("chromedriver (VERINFER_CHROMEDRIVER)"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" and ");
            let why = format!(
                "no {missing} found: install Debian's `chromium chromium-driver` \
                 (`bash scripts/ci-services.sh install` does)"
            );
            if std::env::var("VERINFER_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("VERINFER_REQUIRE_BROWSER=1 and {why}");
            }
            eprintln!("explorer browser test skipped: {why}");
            None
        }
    }
}

/// Where the screenshots go (made when missing), printed once per test.
fn screenshots_dir() -> PathBuf {
    let dir = std::env::var_os("VERINFER_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_TARGET_TMPDIR"))
                .parent()
                .expect("CARGO_TARGET_TMPDIR is target/tmp")
                .join("explorer-screenshots")
        });
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot make {}: {error}", dir.display()));
    println!("explorer screenshots in {}", dir.display());
    dir
}

/// `chromedriver` on a free port, up and answering.
fn start_chromedriver(browser: &Browser, log: &Path) -> (Proc, String) {
    let port = free_port();
    let log_file = std::fs::File::create(log).unwrap();
    let child = Command::new(&browser.chromedriver)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {}: {error}", browser.chromedriver.display()));
    let proc = Proc {
        name: "chromedriver",
        child,
        grace: Duration::from_secs(5),
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on port {port} within 20 s; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (proc, format!("http://127.0.0.1:{port}"))
}

/// A headless Chromium session (root-safe flags), the window at `DESKTOP`.
async fn open_browser(browser: &Browser, webdriver: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("browserName".into(), json!("chrome"));
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": browser.chromium,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .unwrap_or_else(|error| panic!("no Chromium session through {webdriver}: {error}"));
    client
        .set_window_size(DESKTOP.0, DESKTOP.1)
        .await
        .expect("window size");
    client
}

/// `verinfer devnet --keep-running` with its state in a temp dir, up and past its demo.
struct Devnet {
    /// Stopped when the test ends or fails.
    kept: KeptDevnet,
    explorer: String,
    data: tempfile::TempDir,
}

impl Devnet {
    fn start(extra: &[&str]) -> Devnet {
        let data = tempfile::tempdir().unwrap();
        let kept = KeptDevnet::start(data.path(), extra);
        let explorer = field(&kept.stdout, "explorer")
            .unwrap_or_else(|| kept.failed("no `explorer <url>` line"));
        let relayer = field(&kept.stdout, "relayer").unwrap();
        assert_eq!(
            explorer,
            format!("{relayer}explorer"),
            "the explorer is served by the relayer"
        );
        Devnet {
            kept,
            explorer,
            data,
        }
    }

    /// The id of the demo's `kind` task (`task <id> | <kind> ...`) and its table line.
    fn task(&self, kind: &str) -> (u64, &str) {
        let line = self
            .stdout()
            .lines()
            .find(|line| line.starts_with("task ") && line.contains(&format!("| {kind}")))
            .unwrap_or_else(|| panic!("no {kind} task line in:\n{}", self.stdout()));
        let id = line["task ".len()..]
            .split_whitespace()
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no task id in {line:?}"));
        (id, line)
    }

    /// Creates a one-image task with the command the devnet prints (its `export` line for the
    /// connection), without waiting for it; returns the task id.
    fn create_image_task(&self) -> u64 {
        let exports = self
            .stdout()
            .lines()
            .find_map(|line| line.trim().strip_prefix("export "))
            .unwrap_or_else(|| panic!("no export line in:\n{}", self.stdout()));
        let command = self
            .stdout()
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("verinfer task create --image "))
            .unwrap_or_else(|| panic!("no image task command in:\n{}", self.stdout()));
        // As a user pastes them, through a shell (the prompt is quoted), with this build's binary
        // first on PATH; without --wait, so that the page is opened while the task runs.
        let command = command.replace(" --wait", "");
        let binary_dir = Path::new(env!("CARGO_BIN_EXE_verinfer")).parent().unwrap();
        let path = format!(
            "{}:{}",
            binary_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut create = Command::new("sh");
        create
            .arg("-c")
            .arg(format!("export {exports} && {command}"))
            .env("PATH", path);
        let output = create.env("RUST_LOG", "warn").output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "verinfer task create: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .find_map(|line| {
                line.strip_prefix("task ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no task id in {stdout}"))
    }

    /// Everything the devnet printed so far.
    fn stdout(&self) -> &str {
        &self.kept.stdout
    }

    /// The devnet's stderr so far, for failure messages.
    fn stderr(&self) -> String {
        self.kept.stderr()
    }
}

/// The value after `label` on a `--keep-running` help line (`  explorer    http://...`).
fn field(printed: &str, label: &str) -> Option<String> {
    printed.lines().find_map(|line| {
        line.strip_prefix("  ")?
            .strip_prefix(label)
            .filter(|rest| rest.starts_with(' '))
            .map(|rest| rest.trim().to_owned())
    })
}

/// A WebDriver session and where its evidence goes: a failed check saves a screenshot and the
/// page's HTML beside the other screenshots before it fails the test.
struct Session {
    client: Client,
    shots: PathBuf,
}

type Check<T> = Result<T, String>;

impl Session {
    async fn goto(&self, url: &str) -> Check<()> {
        self.client
            .goto(url)
            .await
            .map_err(|error| format!("cannot open {url}: {error}"))
    }

    async fn js(&self, script: &str) -> Check<Value> {
        self.client
            .execute(script, Vec::new())
            .await
            .map_err(|error| format!("script failed: {error}\n{script}"))
    }

    /// Polls `script` until it returns `true` (or the timeout), then returns what it last said.
    async fn wait_js(&self, script: &str, timeout: Duration) -> Check<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.js(script).await? == Value::Bool(true) {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> Check<PathBuf> {
        let png = self
            .client
            .screenshot()
            .await
            .map_err(|error| format!("screenshot {name}: {error}"))?;
        let path = self.shots.join(name);
        std::fs::write(&path, png).map_err(|error| format!("{}: {error}", path.display()))?;
        println!("screenshot {}", path.display());
        Ok(path)
    }

    /// A screenshot of the whole page: the window made as tall as the document (at most 8,000
    /// pixels), then set back.
    async fn full_page_screenshot(&self, name: &str) -> Check<PathBuf> {
        let size = self
            .js("return [document.documentElement.scrollHeight, \
                 window.outerHeight - window.innerHeight, window.outerWidth];")
            .await?;
        let number = |index: usize| size[index].as_u64().unwrap_or(0) as u32;
        let (page, chrome, width) = (number(0), number(1), number(2));
        let resize = |height: u32| self.client.set_window_size(width, height);
        resize((page + chrome).min(8_000))
            .await
            .map_err(|error| format!("window for a full-page screenshot: {error}"))?;
        let shot = self.screenshot(name).await;
        resize(DESKTOP.1)
            .await
            .map_err(|error| format!("window size back: {error}"))?;
        shot
    }

    async fn press(&self, key: Key) -> Check<()> {
        let key = char::from(key);
        self.client
            .perform_actions(
                KeyActions::new("keyboard".into())
                    .then(KeyAction::Down { value: key })
                    .then(KeyAction::Up { value: key }),
            )
            .await
            .map_err(|error| format!("key press: {error}"))
    }

    /// Saves the page as it is (`failure-<name>.png` and `.html`) for a failed check.
    async fn keep_evidence(&self, name: &str) {
        let _ = self.screenshot(&format!("failure-{name}.png")).await;
        if let Ok(html) = self.client.source().await {
            let _ = std::fs::write(self.shots.join(format!("failure-{name}.html")), html);
        }
    }
}

/// Runs `checks` in a browser session; a failed check keeps the evidence and fails the test with
/// the devnet's output. The browser and chromedriver are closed either way.
async fn in_browser<F>(browser: &Browser, devnet: &Devnet, name: &str, checks: F)
where
    F: AsyncFnOnce(&Session) -> Check<()>,
{
    let shots = screenshots_dir();
    let driver_log = devnet.data.path().join("chromedriver.log");
    let (mut driver, webdriver) = start_chromedriver(browser, &driver_log);
    let session = Session {
        client: open_browser(browser, &webdriver).await,
        shots,
    };
    let outcome = checks(&session).await;
    if outcome.is_err() {
        session.keep_evidence(name).await;
    }
    let _ = session.client.close().await;
    driver.stop();
    if let Err(why) = outcome {
        panic!(
            "{name}: {why}\n(screenshot and HTML: {}/failure-{name}.*)\ndevnet stdout:\n{}\ndevnet stderr:\n{}",
            session.shots.display(),
            devnet.stdout(),
            devnet.stderr()
        );
    }
}

/// Every `img.result-image` of `section#images`: src, alt, loaded width, displayed, node links.
const IMAGES_SCRIPT: &str = r#"
return Array.from(document.querySelectorAll('section#images figure.result')).map(figure => {
    const img = figure.querySelector('img.result-image');
    const node = figure.querySelector('a[href*="/explorer/nodes/"]');
    return {
        src: img ? img.getAttribute('src') : null,
        alt: img ? img.alt : null,
        complete: img ? img.complete : false,
        width: img ? img.naturalWidth : 0,
        shown: img ? img.getBoundingClientRect().width > 0 && getComputedStyle(img).visibility !== 'hidden' : false,
        node: node ? node.getAttribute('href') : null,
    };
});
"#;

const IMAGES_LOADED: &str = r#"
const images = Array.from(document.querySelectorAll('section#images img.result-image'));
return images.length > 0 && images.every(img => img.complete && img.naturalWidth > 0);
"#;

const PAIRS_SCRIPT: &str = r#"
return Array.from(document.querySelectorAll('section#distances .pair')).map(pair => ({
    distance: pair.getAttribute('data-distance'),
    threshold: pair.getAttribute('data-threshold'),
    text: pair.textContent.replace(/\s+/g, ' ').trim(),
}));
"#;

/// `(distance, threshold)` of every `.pair` of `section#distances`.
async fn pairs(session: &Session) -> Check<Vec<(u32, u32, String)>> {
    let pairs = session.js(PAIRS_SCRIPT).await?;
    pairs
        .as_array()
        .ok_or("no pairs array")?
        .iter()
        .map(|pair| {
            let number = |key: &str| {
                pair[key]
                    .as_str()
                    .and_then(|value| value.trim().parse::<u32>().ok())
                    .ok_or_else(|| format!("a .pair without a numeric data-{key}: {pair}"))
            };
            Ok((
                number("distance")?,
                number("threshold")?,
                pair["text"].as_str().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

/// The number of images of the demo image task's line (`| image (2 images) |`).
fn image_count(line: &str) -> usize {
    line.split("image (")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no image count in {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_page_shows_every_nodes_images_and_the_distances() {
    let _serial = SERIAL.lock().await;
    let Some(browser) = browser() else { return };
    let devnet = Devnet::start(&[]);
    let (task_id, line) = devnet.task("image");
    assert!(line.contains("Validated"), "{line}");
    let images = image_count(line);
    let url = format!("{}/tasks/{task_id}", devnet.explorer);
    in_browser(&browser, &devnet, "task-page", async |session| {
        session.goto(&url).await?;
        let loaded = session
            .wait_js(IMAGES_LOADED, Duration::from_secs(30))
            .await?;
        let figures = session.js(IMAGES_SCRIPT).await?;
        let figures = figures.as_array().cloned().unwrap_or_default();
        if !loaded {
            return Err(format!(
                "the result images did not all load within 30 s: {figures:#?}"
            ));
        }
        // One figure per (image, node): three nodes' images.
        if figures.len() != 3 * images {
            return Err(format!(
                "{} figures for {images} images × 3 nodes: {figures:#?}",
                figures.len()
            ));
        }
        for figure in &figures {
            let alt = figure["alt"].as_str().unwrap_or_default();
            if alt.trim().is_empty() || figure["shown"] != json!(true) {
                return Err(format!("an image without alt text or not displayed: {figure}"));
            }
        }
        let mut nodes = figures
            .iter()
            .filter_map(|figure| figure["node"].as_str())
            .collect::<Vec<_>>();
        nodes.sort_unstable();
        nodes.dedup();
        if !nodes.is_empty() && nodes.len() != 3 {
            return Err(format!("the images link {} nodes: {nodes:?}", nodes.len()));
        }

        // The pairwise distances: three node pairs per image, all within the threshold.
        let pairs = pairs(session).await?;
        if pairs.len() < 3 {
            return Err(format!("{} distance pairs shown: {pairs:?}", pairs.len()));
        }
        for (distance, threshold, text) in &pairs {
            if distance > threshold || !text.contains(&format!("d = {distance}")) {
                return Err(format!(
                    "an honest pair shows d = {distance} against {threshold}: {text:?}"
                ));
            }
        }
        let verdict = session.js(
            "const v = document.querySelector('section#verdict'); return v ? v.textContent : null;",
        );
        let verdict = verdict.await?;
        if !verdict.as_str().unwrap_or_default().contains("Validated") {
            return Err(format!("the verdict does not say Validated: {verdict}"));
        }
        if session.js("return !!document.querySelector('section#timeline');").await? != json!(true)
        {
            return Err("no section#timeline".into());
        }
        session
            .full_page_screenshot(&format!("task-{task_id}.png"))
            .await?;

        // The keyboard: the first Tab reaches the skip link (or the search box), and the skip
        // link moves to the content.
        session.press(Key::Tab).await?;
        let focused = session
            .js(
                "const e = document.activeElement; \
                 return e ? { tag: e.tagName, cls: e.className, href: e.getAttribute('href'), \
                 search: !!e.closest('form#search') } : null;",
            )
            .await?;
        let skip = focused["href"] == json!("#main");
        if !skip && focused["search"] != json!(true) {
            return Err(format!(
                "Tab focuses {focused}, not the skip link or the search form"
            ));
        }
        if skip {
            session.screenshot(&format!("task-{task_id}-skip-link.png")).await?;
            session.press(Key::Enter).await?;
            let moved = session
                .wait_js("return location.hash === '#main';", Duration::from_secs(5))
                .await?;
            if !moved {
                return Err("Enter on the skip link did not move to #main".into());
            }
        }

        // A phone-sized window: the same page, one more screenshot.
        session
            .client
            .set_window_size(PHONE.0, PHONE.1)
            .await
            .map_err(|error| format!("phone window: {error}"))?;
        session.goto(&url).await?;
        session
            .wait_js(IMAGES_LOADED, Duration::from_secs(30))
            .await?;
        let overflow = session
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await?;
        session
            .screenshot(&format!("task-{task_id}-phone.png"))
            .await?;
        if overflow.as_i64().unwrap_or(0) > 0 {
            return Err(format!(
                "on a {}px-wide window the page scrolls sideways by {overflow}px",
                PHONE.0
            ));
        }

        // The overview: search form and latest tasks, the demo task among them.
        session.client.set_window_size(DESKTOP.0, DESKTOP.1).await.ok();
        session.goto(&devnet.explorer).await?;
        let overview = session
            .js(
                "const latest = document.querySelector('section#latest-tasks'); \
                 return { search: !!document.querySelector('form#search'), \
                 latest: latest ? Array.from(latest.querySelectorAll('a')).map(a => a.getAttribute('href')) : null };",
            )
            .await?;
        let task_href = json!(format!("/explorer/tasks/{task_id}"));
        let listed = overview["latest"]
            .as_array()
            .is_some_and(|links| links.contains(&task_href));
        if overview["search"] != json!(true) || !listed {
            return Err(format!(
                "the overview lacks the search form or task {task_id} in its latest tasks: {overview}"
            ));
        }
        session.full_page_screenshot("overview.png").await?;

        // Live: a new task's page, opened while it runs, turns into the validated verdict by
        // itself (the page is not reloaded: a marker set on the window survives).
        let new_task = devnet.create_image_task();
        session
            .goto(&format!("{}/tasks/{new_task}", devnet.explorer))
            .await?;
        let live = session
            .js("window.__notReloaded = true; return document.getElementById('main').hasAttribute('data-live');")
            .await?;
        if live != json!(true) {
            return Err(format!("task {new_task}'s page is not live while the task runs"));
        }
        let settled = session
            .wait_js(
                "return window.__notReloaded === true && !document.getElementById('main').hasAttribute('data-live') \
                 && document.getElementById('verdict').textContent.includes('Validated');",
                Duration::from_secs(180),
            )
            .await?;
        if !settled {
            let verdict = session
                .js("return document.getElementById('verdict').textContent;")
                .await?;
            return Err(format!(
                "task {new_task}'s open page did not update to its validated verdict within 180 s: {verdict}"
            ));
        }
        session
            .full_page_screenshot(&format!("task-{new_task}-live.png"))
            .await?;
        Ok(())
    })
    .await;
    drop(devnet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cheaters_node_page_shows_its_slash() {
    let _serial = SERIAL.lock().await;
    let Some(browser) = browser() else { return };
    let devnet = Devnet::start(&["--cheater"]);
    let (task_id, _) = devnet.task("image");
    let row = devnet
        .stdout()
        .lines()
        .find(|line| line.contains("(Disagreed, kicked)"))
        .unwrap_or_else(|| panic!("no slashed node in the table:\n{}", devnet.stdout()));
    let cheater = row
        .split_whitespace()
        .find(|word| word.starts_with("0x") && word.len() == 42)
        .unwrap_or_else(|| panic!("no address in {row:?}"))
        .to_owned();
    let node_url = format!("{}/nodes/{cheater}", devnet.explorer);
    let task_url = format!("{}/tasks/{task_id}", devnet.explorer);
    in_browser(&browser, &devnet, "cheater-node-page", async |session| {
        session.goto(&node_url).await?;
        let slashes = session
            .js(
                "return Array.from(document.querySelectorAll('section#slashes tr.slash')).map(tr => ({ \
                 text: tr.textContent.replace(/\\s+/g, ' ').trim(), \
                 tasks: Array.from(tr.querySelectorAll('a')).map(a => a.getAttribute('href')) }));",
            )
            .await?;
        let task_href = json!(format!("/explorer/tasks/{task_id}"));
        let slash = slashes.as_array().and_then(|rows| {
            rows.iter()
                .find(|row| row["tasks"].as_array().is_some_and(|links| links.contains(&task_href)))
        });
        let Some(slash) = slash else {
            return Err(format!(
                "the cheater's page lists no slash linking task {task_id}: {slashes}"
            ));
        };
        if !slash["text"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("disagreed")
        {
            return Err(format!("the slash does not say why (disagreed): {slash}"));
        }
        session.full_page_screenshot("cheater-node.png").await?;

        // The link leads to the task, whose distances show the disagreement.
        session
            .client
            .find(Locator::Css(&format!(
                "section#slashes tr.slash a[href='/explorer/tasks/{task_id}']"
            )))
            .await
            .map_err(|error| format!("the slash's task link: {error}"))?
            .click()
            .await
            .map_err(|error| format!("clicking the slash's task link: {error}"))?;
        let arrived = session
            .wait_js(
                &format!(
                    "return location.pathname === '/explorer/tasks/{task_id}' && \
                     document.readyState === 'complete';"
                ),
                Duration::from_secs(10),
            )
            .await?;
        if !arrived {
            return Err(format!("the slash's link did not open {task_url}"));
        }
        let pairs = pairs(session).await?;
        if !pairs
            .iter()
            .any(|(distance, threshold, _)| distance > threshold)
        {
            return Err(format!(
                "the cheater's task shows no pair over the threshold: {pairs:?}"
            ));
        }
        session
            .wait_js(IMAGES_LOADED, Duration::from_secs(30))
            .await?;
        session
            .full_page_screenshot(&format!("cheater-task-{task_id}.png"))
            .await?;
        Ok(())
    })
    .await;
    drop(devnet);
}
