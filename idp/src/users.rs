//! Demo users and their passwords: the users file, argon2id hashing, and a
//! login check that costs the same whether or not the user exists.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read as _;
use std::path::Path;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use rand::RngCore as _;
use serde::Deserialize;

/// Longest accepted username, in bytes.
pub const MAX_USERNAME: usize = 128;
/// Longest accepted password, in bytes (argon2 itself would take 4 GiB).
pub const MAX_PASSWORD: usize = 1024;
/// Most users a file may hold: this is a demo IdP, not a directory.
pub const MAX_USERS: usize = 1000;
const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Argon2 memory cost ceiling (KiB): a users file cannot make one login eat 1 GiB.
const MAX_M_COST: u32 = 256 * 1024;
const MAX_T_COST: u32 = 16;
const MAX_P_COST: u32 = 8;
const MAX_ATTR: usize = 1024;

/// Why a users file or password could not be used. Never names a password.
#[derive(Debug)]
#[non_exhaustive]
pub enum UsersError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The file is larger than 1 MiB.
    TooLarge,
    /// The file is not `{"users":[...]}` with the documented fields.
    Json(serde_json::Error),
    /// A username is empty, too long or listed twice.
    BadUsername(usize),
    /// A `password_hash` is not an argon2id PHC string with sane parameters.
    BadHash(usize),
    /// A `sub`, `role` or `scope` is empty or too long.
    BadAttribute(usize),
    /// More than [`MAX_USERS`] users.
    TooManyUsers,
    /// An empty or too long password was given to `hash-password`.
    BadPassword,
    /// Argon2 failed to hash.
    Hash,
}

impl fmt::Display for UsersError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UsersError::Io(e) => write!(f, "users file: {e}"),
            UsersError::TooLarge => f.write_str("users file larger than 1 MiB"),
            UsersError::Json(e) => write!(f, "users file: {e}"),
            UsersError::BadUsername(i) => write!(f, "users[{i}]: bad or duplicate username"),
            UsersError::BadHash(i) => {
                write!(f, "users[{i}]: password_hash is not a usable argon2id hash")
            }
            UsersError::BadAttribute(i) => write!(f, "users[{i}]: empty or too long attribute"),
            UsersError::TooManyUsers => write!(f, "more than {MAX_USERS} users"),
            UsersError::BadPassword => {
                write!(f, "password must be 1 to {MAX_PASSWORD} bytes")
            }
            UsersError::Hash => f.write_str("password hashing failed"),
        }
    }
}

impl std::error::Error for UsersError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UsersError::Io(e) => Some(e),
            UsersError::Json(e) => Some(e),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsersFile {
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    username: String,
    password_hash: String,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// One user: who the tokens say they are.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// `sub` claim (defaults to the username).
    pub sub: String,
    /// `role` claim, if any.
    pub role: Option<String>,
    /// `scope` claim (space-delimited), if any.
    pub scope: Option<String>,
    password_hash: String,
}

/// Leaves the hash out, so logs and test failures never show it.
impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("sub", &self.sub)
            .field("role", &self.role)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The loaded users, plus a dummy hash so unknown names cost a full verification.
pub struct UserDb {
    users: BTreeMap<String, User>,
    dummy_hash: String,
}

impl fmt::Debug for UserDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserDb")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// Parses and bounds-checks an argon2id PHC string; returns its parameters.
fn checked_params(phc: &str) -> Option<Params> {
    let hash = PasswordHash::new(phc).ok()?;
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.salt.is_none() || hash.hash.is_none() {
        return None;
    }
    let params = Params::try_from(&hash).ok()?;
    (params.m_cost() <= MAX_M_COST
        && params.t_cost() <= MAX_T_COST
        && params.p_cost() <= MAX_P_COST)
        .then_some(params)
}

fn attribute(value: Option<String>, index: usize) -> Result<Option<String>, UsersError> {
    match value {
        Some(v) if v.is_empty() || v.len() > MAX_ATTR => Err(UsersError::BadAttribute(index)),
        other => Ok(other),
    }
}

/// Hashes `password` as argon2id (PHC string) with `params` and a random salt.
fn hash_with(password: &[u8], params: Params) -> Result<String, UsersError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|_| UsersError::Hash)
}

/// Hashes a password with the crate's default argon2id parameters (19 MiB, t=2),
/// the OWASP-recommended baseline.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if password.is_empty() || password.len() > MAX_PASSWORD {
        return Err(UsersError::BadPassword);
    }
    hash_with(password.as_bytes(), Params::default())
}

impl UserDb {
    /// Parses a users file's JSON text.
    pub fn from_json(text: &str) -> Result<Self, UsersError> {
        let file: UsersFile = serde_json::from_str(text).map_err(UsersError::Json)?;
        if file.users.len() > MAX_USERS {
            return Err(UsersError::TooManyUsers);
        }
        let mut users = BTreeMap::new();
        let mut dummy_params = None;
        for (i, entry) in file.users.into_iter().enumerate() {
            if entry.username.is_empty()
                || entry.username.len() > MAX_USERNAME
                || users.contains_key(&entry.username)
            {
                return Err(UsersError::BadUsername(i));
            }
            let params = checked_params(&entry.password_hash).ok_or(UsersError::BadHash(i))?;
            dummy_params.get_or_insert(params);
            let sub = attribute(entry.sub, i)?.unwrap_or_else(|| entry.username.clone());
            let user = User {
                username: entry.username.clone(),
                sub,
                role: attribute(entry.role, i)?,
                scope: attribute(entry.scope, i)?,
                password_hash: entry.password_hash,
            };
            users.insert(entry.username, user);
        }
        // The dummy hash uses the same parameters as the real ones, so that
        // "no such user" and "wrong password" take the same time.
        let mut random = [0_u8; 32];
        OsRng.fill_bytes(&mut random);
        let dummy_hash = hash_with(&random, dummy_params.unwrap_or_default())?;
        Ok(UserDb { users, dummy_hash })
    }

    /// Reads and parses a users file (at most 1 MiB).
    pub fn load(path: &Path) -> Result<Self, UsersError> {
        let file = std::fs::File::open(path).map_err(UsersError::Io)?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(UsersError::Io)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(UsersError::TooLarge);
        }
        Self::from_json(&text)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file listed no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The user if `password` is theirs. Unknown users, over-long input and
    /// wrong passwords all cost one argon2 verification and give `None`.
    pub fn authenticate(&self, username: &str, password: &str) -> Option<&User> {
        let user = self.users.get(username);
        let phc = user.map_or(self.dummy_hash.as_str(), |u| u.password_hash.as_str());
        let hash = PasswordHash::new(phc).ok()?;
        let too_long = password.len() > MAX_PASSWORD;
        let checked = if too_long {
            &b""[..]
        } else {
            password.as_bytes()
        };
        let ok = Argon2::default().verify_password(checked, &hash).is_ok();
        match user {
            Some(u) if ok && !too_long => Some(u),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    /// Cheap argon2id parameters so that debug-build tests stay fast.
    pub(crate) fn cheap_hash(password: &str) -> String {
        hash_with(password.as_bytes(), Params::new(64, 1, 1, None).unwrap()).unwrap()
    }

    pub(crate) fn sample_db() -> UserDb {
        let text = serde_json::json!({"users": [
            {"username": "alice", "password_hash": cheap_hash("alice-pass"), "sub": "alice-id",
             "role": "admin", "scope": "payments:write orders:read"},
            {"username": "bob", "password_hash": cheap_hash("bob-pass")},
        ]})
        .to_string();
        UserDb::from_json(&text).unwrap()
    }

    #[test]
    fn right_password_authenticates_with_attributes() {
        let db = sample_db();
        assert_eq!(db.len(), 2);
        let alice = db.authenticate("alice", "alice-pass").unwrap();
        assert_eq!(alice.sub, "alice-id");
        assert_eq!(alice.role.as_deref(), Some("admin"));
        assert_eq!(alice.scope.as_deref(), Some("payments:write orders:read"));
        let bob = db.authenticate("bob", "bob-pass").unwrap();
        assert_eq!(bob.sub, "bob");
        assert_eq!(bob.role, None);
    }

    #[test]
    fn wrong_password_or_unknown_user_fails() {
        let db = sample_db();
        assert!(db.authenticate("alice", "bob-pass").is_none());
        assert!(db.authenticate("alice", "").is_none());
        assert!(db.authenticate("alice", "alice-pass ").is_none());
        assert!(db.authenticate("carol", "alice-pass").is_none());
        assert!(db.authenticate("", "").is_none());
        assert!(db
            .authenticate("alice", &"x".repeat(MAX_PASSWORD + 1))
            .is_none());
    }

    #[test]
    fn dummy_hash_uses_the_users_parameters() {
        let db = sample_db();
        let dummy = PasswordHash::new(&db.dummy_hash).unwrap();
        let params = Params::try_from(&dummy).unwrap();
        assert_eq!((params.m_cost(), params.t_cost()), (64, 1));
    }

    #[test]
    fn hash_password_produces_a_verifiable_argon2id_phc_string() {
        let phc = hash_password("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let db = UserDb::from_json(
            &serde_json::json!({"users": [{"username": "u", "password_hash": phc}]}).to_string(),
        )
        .unwrap();
        assert!(db.authenticate("u", "s3cret").is_some());
        assert!(matches!(hash_password(""), Err(UsersError::BadPassword)));
        assert!(matches!(
            hash_password(&"x".repeat(MAX_PASSWORD + 1)),
            Err(UsersError::BadPassword)
        ));
    }

    #[test]
    fn malformed_users_files_are_refused() {
        let good = cheap_hash("p");
        let argon2i = "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        let greedy =
            "$argon2id$v=19$m=2000000,t=1,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
        type Check = fn(&UsersError) -> bool;
        let cases: Vec<(String, Check)> = vec![
            ("not json".into(), |e| matches!(e, UsersError::Json(_))),
            ("{}".into(), |e| matches!(e, UsersError::Json(_))),
            (r#"{"users":[{"username":"a"}]}"#.into(), |e| {
                matches!(e, UsersError::Json(_))
            }),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":good,"extra":1}]})
                    .to_string(),
                |e| matches!(e, UsersError::Json(_)),
            ),
            (
                serde_json::json!({"users":[{"username":"","password_hash":good}]}).to_string(),
                |e| matches!(e, UsersError::BadUsername(0)),
            ),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":good},
                                             {"username":"a","password_hash":good}]})
                .to_string(),
                |e| matches!(e, UsersError::BadUsername(1)),
            ),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":"plain"}]}).to_string(),
                |e| matches!(e, UsersError::BadHash(0)),
            ),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":argon2i}]}).to_string(),
                |e| matches!(e, UsersError::BadHash(0)),
            ),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":greedy}]}).to_string(),
                |e| matches!(e, UsersError::BadHash(0)),
            ),
            (
                serde_json::json!({"users":[{"username":"a","password_hash":good,"role":""}]})
                    .to_string(),
                |e| matches!(e, UsersError::BadAttribute(0)),
            ),
        ];
        for (text, expected) in cases {
            let err = UserDb::from_json(&text).unwrap_err();
            assert!(expected(&err), "{text}: {err}");
            assert!(!err.to_string().contains("$argon2"), "{err}");
        }
    }

    #[test]
    fn user_debug_hides_the_hash() {
        let db = sample_db();
        let alice = db.authenticate("alice", "alice-pass").unwrap();
        assert!(!format!("{alice:?}").contains("argon2"));
    }
}
