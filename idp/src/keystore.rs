//! The key directory: which keys exist, which one signs, and which are still
//! published while their grace period runs. Private keys are PKCS#8 PEM files
//! named `<kid>.pem` (mode 0600, directory 0700); `keys.json` is the manifest.
//! Every write goes to a temporary file first and is then renamed, so a crash
//! never leaves a half-written key or manifest behind.

use std::fmt;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::keys::{Alg, KeyError, SigningKey};

/// Name of the manifest inside the key directory.
pub const MANIFEST: &str = "keys.json";
/// More published keys than this means something is rotating in a loop.
pub const MAX_KEYS: usize = 32;
/// The manifest of 32 keys is about 4 KB; refuse to read anything much larger.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
const MAX_PEM_BYTES: u64 = 16 * 1024;
const MANIFEST_VERSION: u32 = 1;

/// Why the key directory could not be read or changed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// Reading or writing a file in the key directory failed.
    Io(io::Error),
    /// `keys.json` is not a manifest this IdP wrote.
    BadManifest,
    /// The directory holds no key yet (run `keygen` first).
    NoKeys,
    /// A key file is missing, unreadable or does not match its manifest entry.
    BadKey(KeyError),
    /// Publishing another key would exceed [`MAX_KEYS`].
    TooManyKeys,
    /// A new key could not be generated.
    Generate(KeyError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "key directory: {e}"),
            StoreError::BadManifest => f.write_str("key directory: invalid keys.json"),
            StoreError::NoKeys => f.write_str("key directory has no key (run keygen)"),
            StoreError::BadKey(e) => write!(f, "key directory: {e}"),
            StoreError::TooManyKeys => f.write_str("too many published keys"),
            StoreError::Generate(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::Io(e) => Some(e),
            StoreError::BadKey(e) | StoreError::Generate(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

/// What `keys.json` records about one key (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyMeta {
    /// RFC 7638 thumbprint; also the file name stem.
    pub kid: String,
    /// JWS algorithm name.
    pub alg: String,
    /// Unix seconds when the key was created.
    pub created_at: u64,
    /// Unix seconds after which the key is no longer published (set by rotation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_at: Option<u64>,
}

impl KeyMeta {
    /// A key is published until its retirement time has come.
    fn published(&self, now: u64) -> bool {
        self.retire_at.map_or(true, |t| now < t)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    active: String,
    keys: Vec<KeyMeta>,
}

/// What to do with the keys that were published before a new one is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// Keep publishing them (`keygen`).
    Keep,
    /// Stop publishing them after this many seconds (`rotate --grace`).
    After(u64),
}

struct Entry {
    meta: KeyMeta,
    key: SigningKey,
}

/// The keys of one directory, loaded in memory.
pub struct KeyStore {
    dir: PathBuf,
    active: Option<String>,
    entries: Vec<Entry>,
    /// Modification time of the manifest as last read or written, so a server
    /// notices when `jwt-idp keygen`/`rotate` changed the directory under it.
    stamp: Option<SystemTime>,
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("active", &self.active)
            .field("keys", &self.entries.len())
            .finish()
    }
}

/// A kid doubles as a file name, so it must be plain base64url.
fn valid_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len())
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, StoreError> {
    let file = fs::File::open(path)?;
    let mut buf = Vec::new();
    file.take(max + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > max {
        return Err(StoreError::BadManifest);
    }
    Ok(buf)
}

/// Writes `bytes` to `path` via a 0600 temporary file and a rename.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or(StoreError::BadManifest)?;
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let result = (|| -> io::Result<()> {
        let mut file = opts.open(&tmp)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(StoreError::Io)
}

fn create_dir_private(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

impl KeyStore {
    /// Loads the directory; a missing directory or manifest is an empty store.
    /// Every key file is checked against its manifest entry (algorithm and
    /// thumbprint), so a swapped or corrupted file is refused, not used.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let manifest_path = dir.join(MANIFEST);
        if !manifest_path.exists() {
            return Ok(KeyStore {
                dir: dir.to_path_buf(),
                active: None,
                entries: Vec::new(),
                stamp: None,
            });
        }
        let stamp = manifest_stamp(dir);
        let bytes = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|_| StoreError::BadManifest)?;
        if manifest.version != MANIFEST_VERSION
            || manifest.keys.len() > MAX_KEYS
            || !manifest.keys.iter().any(|k| k.kid == manifest.active)
        {
            return Err(StoreError::BadManifest);
        }
        let mut entries: Vec<Entry> = Vec::with_capacity(manifest.keys.len());
        for meta in manifest.keys {
            if !valid_kid(&meta.kid) || entries.iter().any(|e| e.meta.kid == meta.kid) {
                return Err(StoreError::BadManifest);
            }
            let alg: Alg = meta.alg.parse().map_err(|_| StoreError::BadManifest)?;
            let pem_bytes = Zeroize(read_bounded(
                &dir.join(format!("{}.pem", meta.kid)),
                MAX_PEM_BYTES,
            )?);
            let pem = std::str::from_utf8(&pem_bytes.0)
                .map_err(|_| StoreError::BadKey(KeyError::Decode))?;
            let key = SigningKey::from_pkcs8_pem(alg, pem).map_err(StoreError::BadKey)?;
            if key.kid() != meta.kid {
                return Err(StoreError::BadKey(KeyError::Decode));
            }
            entries.push(Entry { meta, key });
        }
        Ok(KeyStore {
            dir: dir.to_path_buf(),
            active: Some(manifest.active),
            entries,
            stamp,
        })
    }

    /// Reloads the directory if another process changed the manifest since
    /// this store last read or wrote it. Returns whether it reloaded.
    /// On error the loaded keys stay in use and the same change is not
    /// retried (so a broken manifest is reported once, not every second).
    pub fn reload_if_changed(&mut self) -> Result<bool, StoreError> {
        let current = manifest_stamp(&self.dir);
        if current == self.stamp {
            return Ok(false);
        }
        match KeyStore::open(&self.dir) {
            Ok(fresh) => {
                *self = fresh;
                Ok(true)
            }
            Err(e) => {
                self.stamp = current;
                Err(e)
            }
        }
    }

    /// The key that signs new tokens, with its kid.
    pub fn active(&self) -> Result<(&str, &SigningKey), StoreError> {
        let kid = self.active.as_deref().ok_or(StoreError::NoKeys)?;
        self.entries
            .iter()
            .find(|e| e.meta.kid == kid)
            .map(|e| (e.meta.kid.as_str(), &e.key))
            .ok_or(StoreError::NoKeys)
    }

    /// The manifest entries, active key included, oldest first.
    #[cfg(test)]
    pub fn metas(&self) -> impl Iterator<Item = &KeyMeta> {
        self.entries.iter().map(|e| &e.meta)
    }

    /// The public JWKS as of `now`: every key whose grace period has not ended.
    pub fn jwks(&self, now: u64) -> Value {
        let keys: Vec<Value> = self
            .entries
            .iter()
            .filter(|e| e.meta.published(now))
            .map(|e| e.key.public_jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// The distinct algorithms of the published keys (for the discovery document).
    pub fn published_algs(&self, now: u64) -> Vec<&'static str> {
        let mut algs: Vec<&'static str> = Vec::new();
        for e in self.entries.iter().filter(|e| e.meta.published(now)) {
            let alg = e.key.alg().as_str();
            if !algs.contains(&alg) {
                algs.push(alg);
            }
        }
        algs
    }

    /// When the active key was created (drives `serve --rotate-every`).
    pub fn active_created_at(&self) -> Option<u64> {
        let kid = self.active.as_deref()?;
        self.entries
            .iter()
            .find(|e| e.meta.kid == kid)
            .map(|e| e.meta.created_at)
    }

    /// Adds `key`, makes it the active key and persists it; the previously
    /// published keys are kept or scheduled for retirement as `retire` says.
    /// Keys whose grace period has ended are dropped (files deleted) first.
    pub fn add_key(
        &mut self,
        key: SigningKey,
        now: u64,
        retire: Retire,
    ) -> Result<String, StoreError> {
        let dropped = self.prune_entries(now);
        if self.entries.len() >= MAX_KEYS {
            return Err(StoreError::TooManyKeys);
        }
        let kid = key.kid();
        create_dir_private(&self.dir)?;
        let pem = key.to_pkcs8_pem().map_err(StoreError::BadKey)?;
        write_private(&self.dir.join(format!("{kid}.pem")), pem.as_bytes())?;
        if let Retire::After(grace) = retire {
            let until = now.saturating_add(grace);
            for e in &mut self.entries {
                e.meta.retire_at = Some(e.meta.retire_at.map_or(until, |t| t.min(until)));
            }
        }
        self.entries.retain(|e| e.meta.kid != kid);
        self.entries.push(Entry {
            meta: KeyMeta {
                kid: kid.clone(),
                alg: key.alg().as_str().into(),
                created_at: now,
                retire_at: None,
            },
            key,
        });
        self.active = Some(kid.clone());
        self.save()?;
        self.delete_key_files(&dropped);
        Ok(kid)
    }

    /// Generates a key of `alg` and adds it (see [`KeyStore::add_key`]).
    pub fn generate(
        &mut self,
        alg: Alg,
        rsa_bits: usize,
        now: u64,
        retire: Retire,
    ) -> Result<String, StoreError> {
        let key = SigningKey::generate(alg, rsa_bits).map_err(StoreError::Generate)?;
        self.add_key(key, now, retire)
    }

    /// Drops keys whose grace period has ended and deletes their files.
    /// Returns whether anything changed.
    pub fn prune(&mut self, now: u64) -> Result<bool, StoreError> {
        let dropped = self.prune_entries(now);
        if dropped.is_empty() {
            return Ok(false);
        }
        self.save()?;
        self.delete_key_files(&dropped);
        Ok(true)
    }

    /// Removes retired entries from memory (the active key is never retired)
    /// and returns their kids.
    fn prune_entries(&mut self, now: u64) -> Vec<String> {
        let active = self.active.clone();
        let (keep, dropped): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .partition(|e| e.meta.published(now) || Some(&e.meta.kid) == active.as_ref());
        self.entries = keep;
        dropped.into_iter().map(|e| e.meta.kid).collect()
    }

    /// Deletes the files of keys this store dropped. Only those: a key file
    /// another process is about to list in the manifest is never touched.
    fn delete_key_files(&self, kids: &[String]) {
        for kid in kids.iter().filter(|k| valid_kid(k)) {
            let _ = fs::remove_file(self.dir.join(format!("{kid}.pem")));
        }
    }

    fn save(&mut self) -> Result<(), StoreError> {
        let active = self.active.clone().ok_or(StoreError::NoKeys)?;
        let manifest = Manifest {
            version: MANIFEST_VERSION,
            active,
            keys: self.entries.iter().map(|e| e.meta.clone()).collect(),
        };
        let mut text =
            serde_json::to_string_pretty(&manifest).map_err(|_| StoreError::BadManifest)?;
        text.push('\n');
        write_private(&self.dir.join(MANIFEST), text.as_bytes())?;
        self.stamp = manifest_stamp(&self.dir);
        Ok(())
    }

    /// The earliest future retirement time.
    #[cfg(test)]
    pub fn next_retirement(&self, now: u64) -> Option<u64> {
        self.entries
            .iter()
            .filter_map(|e| e.meta.retire_at)
            .filter(|&t| t > now)
            .min()
    }
}

/// The manifest's modification time, if it exists.
fn manifest_stamp(dir: &Path) -> Option<SystemTime> {
    fs::metadata(dir.join(MANIFEST))
        .and_then(|m| m.modified())
        .ok()
}

/// Wipes a buffer that held a private key when it goes out of scope.
struct Zeroize(Vec<u8>);

impl Drop for Zeroize {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// A JWKS object as JSON text, for printing.
pub fn jwks_text(jwks: &Value) -> String {
    serde_json::to_string_pretty(jwks).unwrap_or_else(|_| String::from("{\"keys\":[]}"))
}

/// The kids listed in a JWKS, in order.
#[cfg(test)]
pub fn published_kids(jwks: &Value) -> Vec<String> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|keys| {
            keys.iter()
                .filter_map(|k| k.get("kid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::keys::tests::RSA_TEST_PEM;

    pub(crate) fn temp_dir(tag: &str) -> PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "jwt-idp-test-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn empty_dir_has_no_active_key() {
        let dir = temp_dir("empty");
        let store = KeyStore::open(&dir).unwrap();
        assert!(matches!(store.active(), Err(StoreError::NoKeys)));
        assert_eq!(store.jwks(0), json!({"keys": []}));
    }

    #[test]
    fn keys_persist_across_reopen_with_private_permissions() {
        let dir = temp_dir("persist");
        let mut store = KeyStore::open(&dir).unwrap();
        let rsa = SigningKey::from_pkcs8_pem(Alg::Rs256, RSA_TEST_PEM).unwrap();
        let kid1 = store.add_key(rsa, 100, Retire::Keep).unwrap();
        let kid2 = store.generate(Alg::EdDsa, 0, 200, Retire::Keep).unwrap();
        let reopened = KeyStore::open(&dir).unwrap();
        assert_eq!(reopened.active().unwrap().0, kid2);
        assert_eq!(reopened.active().unwrap().1.alg(), Alg::EdDsa);
        assert_eq!(
            published_kids(&reopened.jwks(300)),
            vec![kid1.clone(), kid2.clone()]
        );
        assert_eq!(reopened.jwks(300), store.jwks(300));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(dir.join(format!("{kid1}.pem"))), 0o600);
            assert_eq!(mode(dir.join(MANIFEST)), 0o600);
            assert_eq!(mode(dir.clone()), 0o700);
        }
        // No temporary files are left behind.
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotation_keeps_old_key_published_until_grace_ends() {
        let dir = temp_dir("rotate");
        let mut store = KeyStore::open(&dir).unwrap();
        let old = store.generate(Alg::Es256, 0, 1_000, Retire::Keep).unwrap();
        let new = store
            .generate(Alg::Es256, 0, 2_000, Retire::After(60))
            .unwrap();
        assert_eq!(store.active().unwrap().0, new);
        assert_eq!(
            published_kids(&store.jwks(2_059)),
            vec![old.clone(), new.clone()]
        );
        assert_eq!(published_kids(&store.jwks(2_060)), vec![new.clone()]);
        assert_eq!(store.next_retirement(2_000), Some(2_060));
        // The retirement survives a reopen, and pruning deletes the old file.
        let mut store = KeyStore::open(&dir).unwrap();
        assert!(!store.prune(2_059).unwrap());
        assert!(dir.join(format!("{old}.pem")).exists());
        assert!(store.prune(2_060).unwrap());
        assert!(!dir.join(format!("{old}.pem")).exists());
        let store = KeyStore::open(&dir).unwrap();
        assert_eq!(store.metas().count(), 1);
        assert_eq!(store.next_retirement(2_060), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn zero_grace_drops_the_old_key_at_once_but_never_the_active_one() {
        let dir = temp_dir("zero");
        let mut store = KeyStore::open(&dir).unwrap();
        store.generate(Alg::Es256, 0, 10, Retire::Keep).unwrap();
        let new = store.generate(Alg::Es256, 0, 10, Retire::After(0)).unwrap();
        assert_eq!(published_kids(&store.jwks(10)), vec![new.clone()]);
        // A third rotation prunes the retired key from the manifest.
        let newest = store.generate(Alg::EdDsa, 0, 20, Retire::After(0)).unwrap();
        assert_eq!(store.metas().count(), 2);
        assert_eq!(published_kids(&store.jwks(20)), vec![newest]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_rotation_never_extends_an_earlier_deadline() {
        let dir = temp_dir("deadline");
        let mut store = KeyStore::open(&dir).unwrap();
        let first = store.generate(Alg::Es256, 0, 0, Retire::Keep).unwrap();
        store
            .generate(Alg::Es256, 0, 0, Retire::After(100))
            .unwrap();
        store
            .generate(Alg::Es256, 0, 50, Retire::After(1_000))
            .unwrap();
        let meta = store.metas().find(|m| m.kid == first).unwrap();
        assert_eq!(meta.retire_at, Some(100));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tampered_directory_is_refused() {
        let dir = temp_dir("tamper");
        let mut store = KeyStore::open(&dir).unwrap();
        let kid_a = store.generate(Alg::Es256, 0, 0, Retire::Keep).unwrap();
        let kid_b = store.generate(Alg::Es256, 0, 0, Retire::Keep).unwrap();
        // Swap the two key files: thumbprints no longer match the manifest.
        let a = dir.join(format!("{kid_a}.pem"));
        let b = dir.join(format!("{kid_b}.pem"));
        let (pa, pb) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        fs::write(&a, &pb).unwrap();
        fs::write(&b, &pa).unwrap();
        assert!(matches!(KeyStore::open(&dir), Err(StoreError::BadKey(_))));
        // A manifest pointing outside the directory is refused.
        fs::write(
            dir.join(MANIFEST),
            r#"{"version":1,"active":"../x","keys":[{"kid":"../x","alg":"ES256","created_at":0}]}"#,
        )
        .unwrap();
        assert!(matches!(KeyStore::open(&dir), Err(StoreError::BadManifest)));
        for bad in [
            "",
            "null",
            "{}",
            r#"{"version":2,"active":"a","keys":[]}"#,
            r#"{"version":1,"active":"a","keys":[]}"#,
        ] {
            fs::write(dir.join(MANIFEST), bad).unwrap();
            assert!(matches!(KeyStore::open(&dir), Err(StoreError::BadManifest)));
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_store_reloads_when_another_process_changed_the_directory() {
        let dir = temp_dir("reload");
        let mut server = KeyStore::open(&dir).unwrap();
        let first = server.generate(Alg::Es256, 0, 0, Retire::Keep).unwrap();
        assert!(!server.reload_if_changed().unwrap());
        // Another process (the CLI) rotates; make sure the mtime differs.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut cli = KeyStore::open(&dir).unwrap();
        let second = cli.generate(Alg::EdDsa, 0, 10, Retire::After(100)).unwrap();
        assert!(server.reload_if_changed().unwrap());
        assert_eq!(server.active().unwrap().0, second);
        assert_eq!(
            published_kids(&server.jwks(10)),
            vec![first, second.clone()]
        );
        assert!(!server.reload_if_changed().unwrap());
        // A broken manifest is reported once; the loaded keys stay in use.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(dir.join(MANIFEST), "{").unwrap();
        assert!(server.reload_if_changed().is_err());
        assert!(!server.reload_if_changed().unwrap());
        assert_eq!(server.active().unwrap().0, second);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn key_count_is_bounded() {
        let dir = temp_dir("bounded");
        let mut store = KeyStore::open(&dir).unwrap();
        for i in 0..MAX_KEYS as u64 {
            store.generate(Alg::EdDsa, 0, i, Retire::Keep).unwrap();
        }
        assert!(matches!(
            store.generate(Alg::EdDsa, 0, 99, Retire::Keep),
            Err(StoreError::TooManyKeys)
        ));
        fs::remove_dir_all(&dir).unwrap();
    }
}
