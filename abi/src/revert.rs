//! [`Revert`]: the one decoder of why a call to the contracts reverted, for the node, the client
//! and the CLI.

use std::fmt;

use alloy::{primitives::Bytes, sol_types::SolInterface};

use crate::Verinfer::VerinferErrors;

/// Why a contract call or transaction reverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revert {
    /// One of `Verinfer`'s custom errors (they include the OpenZeppelin errors it inherits).
    Verinfer(VerinferErrors),
    /// Revert data that is no `Verinfer` error (a token's error, a `require` string, a panic).
    Other(Bytes),
}

impl Revert {
    /// The revert carried by a contract call's error; `None` when the call failed for another
    /// reason (transport, no contract, decoding of a successful answer).
    pub fn from_error(error: &alloy::contract::Error) -> Option<Self> {
        if let Some(decoded) = error.as_decoded_interface_error::<VerinferErrors>() {
            return Some(Self::Verinfer(decoded));
        }
        error.as_revert_data().map(|data| Self::from_data(&data))
    }

    /// Decodes raw revert data.
    pub fn from_data(data: &[u8]) -> Self {
        match VerinferErrors::abi_decode(data) {
            Ok(decoded) => Self::Verinfer(decoded),
            Err(_) => Self::Other(Bytes::copy_from_slice(data)),
        }
    }

    /// The `Verinfer` error, when it is one.
    pub fn verinfer(&self) -> Option<&VerinferErrors> {
        match self {
            Self::Verinfer(error) => Some(error),
            Self::Other(_) => None,
        }
    }

    /// The `Verinfer` error, when it is one.
    pub fn into_verinfer(self) -> Option<VerinferErrors> {
        match self {
            Self::Verinfer(error) => Some(error),
            Self::Other(_) => None,
        }
    }
}

/// A `Verinfer` error prints as its Rust form (`NotSelected(NotSelected { .. })`), other data as
/// `revert data 0x…`.
impl fmt::Display for Revert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Verinfer(error) => write!(f, "{error:?}"),
            Self::Other(data) => write!(f, "revert data {data}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::sol_types::SolError;

    #[test]
    fn verinfer_errors_decode_and_other_data_is_kept() {
        let data = crate::Verinfer::UnknownTask {
            taskId: alloy::primitives::U256::from(4),
        }
        .abi_encode();
        let revert = Revert::from_data(&data);
        assert!(revert.verinfer().is_some(), "{revert}");
        assert!(revert.to_string().contains("UnknownTask"), "{revert}");
        let other = Revert::from_data(&[1, 2, 3]);
        assert_eq!(other.to_string(), "revert data 0x010203");
        assert!(other.into_verinfer().is_none());
    }
}
