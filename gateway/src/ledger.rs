//! API keys and their budgets.
//!
//! Keys are known by their SHA-256 only; a presented key is hashed and looked up, and neither the
//! key nor its hash is ever logged (logs and metrics carry the key's configured name). A request's
//! fee is reserved before its transaction (429 when the budget cannot cover it, so nothing is
//! spent), charged when `createTask` is mined, released when the transaction fails, and given
//! back when the task ends with a refund (aborted, errored, expired). Charges are written to
//! `state_file` (write to a temporary file, then rename) so that budgets survive restarts.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use verinfer_abi::TokenDecimals;

use crate::{
    config::{ApiKeyConfig, Budget},
    error::ApiError,
};

/// Prefix of the keys `verinfer gateway --new-api-key` makes.
pub const API_KEY_PREFIX: &str = "vk-";

/// Why the ledger's state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// It exists but cannot be read or parsed (it is left as it is).
    #[error("cannot read the gateway's state file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// It cannot be written.
    #[error("cannot write the gateway's state file {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A budget does not fit the token's decimals.
    #[error("API key {name:?}: budget {budget}: {reason}")]
    Budget {
        /// The key's name.
        name: String,
        /// The configured budget.
        budget: String,
        /// Why.
        reason: String,
    },
}

/// A new random API key: `vk-` and 64 hex digits (256 bits).
pub fn new_api_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{API_KEY_PREFIX}{}", hex::encode(bytes))
}

/// The hex SHA-256 that identifies `key` in the configuration.
pub fn api_key_sha256(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The UTC day number of now.
fn today() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default()
}

/// What one key has spent, as stored (amounts as decimal strings: they exceed JSON's safe integers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Spent {
    #[serde(with = "units")]
    total: u128,
    day: u64,
    #[serde(with = "units")]
    day_spent: u128,
}

mod units {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(units: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(units)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u128, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// By key name.
    spent: HashMap<String, Spent>,
}

#[derive(Debug)]
struct Key {
    name: String,
    per_day: bool,
    limit: u128,
}

#[derive(Debug, Default)]
struct Books {
    state: State,
    /// Reserved for requests whose transaction is not mined yet, by key name.
    reserved: HashMap<String, u128>,
}

/// The API keys, their budgets and what they spent.
#[derive(Debug)]
pub struct Ledger {
    /// By hex SHA-256 of the key.
    keys: HashMap<String, Key>,
    path: PathBuf,
    decimals: TokenDecimals,
    books: Mutex<Books>,
}

/// The key a request authenticated with: its configured name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's name.
    pub name: String,
}

/// A fee reserved against a key's budget; [`Ledger::charge`] or [`Ledger::release`] ends it.
#[derive(Debug)]
#[must_use = "a reservation is charged or released"]
pub struct Reservation {
    name: String,
    fee: u128,
}

/// A charged fee, which [`Ledger::refund`] can give back.
#[derive(Debug, Clone)]
pub struct Charge {
    name: String,
    fee: u128,
    day: u64,
}

impl Ledger {
    /// The keys of `config` with what `path` says they spent (nothing when it does not exist).
    pub fn open(
        keys: &[ApiKeyConfig],
        path: &Path,
        decimals: TokenDecimals,
    ) -> Result<Self, LedgerError> {
        let state = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| LedgerError::Read {
                path: path.to_owned(),
                reason: error.to_string(),
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(error) => {
                return Err(LedgerError::Read {
                    path: path.to_owned(),
                    reason: error.to_string(),
                });
            }
        };
        let keys = keys
            .iter()
            .map(|key| {
                let (per_day, amount) = match &key.budget {
                    Budget::PerDay(tokens) => (true, tokens),
                    Budget::Total(tokens) => (false, tokens),
                };
                let limit = amount
                    .0
                    .to_units(decimals)
                    .map_err(|error| LedgerError::Budget {
                        name: key.name.clone(),
                        budget: amount.to_string(),
                        reason: error.to_string(),
                    })?;
                Ok((
                    key.sha256.trim().to_ascii_lowercase(),
                    Key {
                        name: key.name.clone(),
                        per_day,
                        limit,
                    },
                ))
            })
            .collect::<Result<_, LedgerError>>()?;
        Ok(Self {
            keys,
            path: path.to_owned(),
            decimals,
            books: Mutex::new(Books {
                state,
                reserved: HashMap::new(),
            }),
        })
    }

    /// The caller of a request with this `Authorization` header value (401 otherwise). The key
    /// is compared by its hash and never echoed.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, ApiError> {
        let Some(header) = authorization else {
            return Err(ApiError::unauthorized(
                "no API key: send `Authorization: Bearer <key>` (OPENAI_API_KEY for the SDKs)",
            ));
        };
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header is not `Bearer <key>`")
            })?;
        self.keys
            .get(&api_key_sha256(key))
            .map(|key| Caller {
                name: key.name.clone(),
            })
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))
    }

    /// Reserves `fee` (base units) against the caller's budget, or says how much is left (429).
    pub fn reserve(&self, caller: &Caller, fee: u128) -> Result<Reservation, ApiError> {
        let key = self
            .keys
            .values()
            .find(|key| key.name == caller.name)
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        let reserved = books.reserved.get(&key.name).copied().unwrap_or_default();
        let spent = books
            .state
            .spent
            .get(&key.name)
            .map(|spent| spent_in_window(spent, key.per_day))
            .unwrap_or_default();
        let used = spent.saturating_add(reserved);
        if used.saturating_add(fee) > key.limit {
            let left = key.limit.saturating_sub(used);
            return Err(ApiError::over_budget(format!(
                "API key {:?} has {} of its {} tokens{} left; this request's fee is {} tokens",
                key.name,
                self.decimals.format(left),
                self.decimals.format(key.limit),
                if key.per_day { " per UTC day" } else { "" },
                self.decimals.format(fee),
            )));
        }
        *books.reserved.entry(key.name.clone()).or_default() += fee;
        Ok(Reservation {
            name: key.name.clone(),
            fee,
        })
    }

    /// The reserved fee was not spent (the transaction was not mined).
    pub fn release(&self, reservation: Reservation) {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        unreserve(&mut books, &reservation);
    }

    /// The reserved fee was spent (`createTask` mined): it is written to the state file.
    pub fn charge(&self, reservation: Reservation) -> Result<Charge, LedgerError> {
        let day = today();
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        unreserve(&mut books, &reservation);
        let spent = books
            .state
            .spent
            .entry(reservation.name.clone())
            .or_default();
        if spent.day != day {
            spent.day = day;
            spent.day_spent = 0;
        }
        spent.total = spent.total.saturating_add(reservation.fee);
        spent.day_spent = spent.day_spent.saturating_add(reservation.fee);
        self.persist(&books.state)?;
        Ok(Charge {
            name: reservation.name,
            fee: reservation.fee,
            day,
        })
    }

    /// The task ended with its fee credited back to the gateway: the key gets it back.
    pub fn refund(&self, charge: &Charge) -> Result<(), LedgerError> {
        let mut books = self.books.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(spent) = books.state.spent.get_mut(&charge.name) {
            spent.total = spent.total.saturating_sub(charge.fee);
            if spent.day == charge.day {
                spent.day_spent = spent.day_spent.saturating_sub(charge.fee);
            }
        }
        self.persist(&books.state)
    }

    /// Writes `state` next to the state file, then renames it over (never a half-written file).
    fn persist(&self, state: &State) -> Result<(), LedgerError> {
        let write_error = |source| LedgerError::Write {
            path: self.path.clone(),
            source,
        };
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| write_error(e.into()))?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write_error)?;
        }
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        std::fs::write(&tmp, bytes).map_err(write_error)?;
        std::fs::rename(&tmp, &self.path).map_err(write_error)
    }
}

fn unreserve(books: &mut Books, reservation: &Reservation) {
    if let Some(reserved) = books.reserved.get_mut(&reservation.name) {
        *reserved = reserved.saturating_sub(reservation.fee);
    }
}

/// What counts against the budget now: today's spending, or everything.
fn spent_in_window(spent: &Spent, per_day: bool) -> u128 {
    match per_day {
        true if spent.day == today() => spent.day_spent,
        true => 0,
        false => spent.total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tokens;

    fn keys() -> Vec<ApiKeyConfig> {
        vec![
            ApiKeyConfig {
                name: "daily".into(),
                sha256: api_key_sha256("vk-daily"),
                budget: Budget::PerDay(Tokens("3".parse().unwrap())),
            },
            ApiKeyConfig {
                name: "total".into(),
                sha256: api_key_sha256("vk-total").to_uppercase(),
                budget: Budget::Total(Tokens("2.5".parse().unwrap())),
            },
        ]
    }

    #[test]
    fn keys_authenticate_by_hash_and_errors_never_echo_them() {
        let dir = tempfile::tempdir().unwrap();
        let decimals = TokenDecimals::new(18).unwrap();
        let ledger = Ledger::open(&keys(), &dir.path().join("s.json"), decimals).unwrap();
        assert_eq!(
            ledger.authenticate(Some("Bearer vk-total")).unwrap().name,
            "total"
        );
        for bad in [Some("Bearer vk-nope"), Some("vk-daily"), None] {
            let error = ledger.authenticate(bad).unwrap_err();
            assert_eq!(error.status, 401);
            assert!(!error.message.contains("vk-"), "{}", error.message);
        }
        assert!(new_api_key().starts_with(API_KEY_PREFIX));
        assert_ne!(new_api_key(), new_api_key());
    }

    #[test]
    fn budgets_reserve_charge_release_refund_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join("gateway.json");
        let decimals = TokenDecimals::new(18).unwrap();
        let token = 10u128.pow(18);
        let ledger = Ledger::open(&keys(), &path, decimals).unwrap();
        let total = ledger.authenticate(Some("Bearer vk-total")).unwrap();
        let first = ledger.reserve(&total, 2 * token).unwrap();
        // The reservation counts: 2 + 1 > 2.5.
        let error = ledger.reserve(&total, token).unwrap_err();
        assert_eq!(error.status, 429);
        assert!(
            error.message.contains("0.5 of its 2.5 tokens"),
            "{}",
            error.message
        );
        let charge = ledger.charge(first).unwrap();
        let second = ledger.reserve(&total, token / 2).unwrap();
        ledger.release(second);

        // Reopened: the charge is remembered, the released reservation is not.
        let reopened = Ledger::open(&keys(), &path, decimals).unwrap();
        assert!(reopened.reserve(&total, token).is_err());
        let again = reopened.reserve(&total, token / 2).unwrap();
        reopened.release(again);
        reopened.refund(&charge).unwrap();
        let after_refund = Ledger::open(&keys(), &path, decimals).unwrap();
        let all = after_refund.reserve(&total, 5 * token / 2).unwrap();
        after_refund.release(all);

        // A corrupt state file is an error naming it, and is left as it is.
        std::fs::write(&path, b"{not json").unwrap();
        let error = Ledger::open(&keys(), &path, decimals)
            .unwrap_err()
            .to_string();
        assert!(error.contains("gateway.json"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
    }
}
