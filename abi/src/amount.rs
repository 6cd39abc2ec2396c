//! Staking-token amounts in the token's own decimals (its ERC-20 `decimals()`), parsed with
//! alloy's `parse_units` and printed with `format_units`.
//!
//! Amounts travel and are stored as integer base units (`u128`); only people read and type
//! decimal tokens. [`TokenDecimals::read`] asks the token once; [`TokenAmountText`] is what a
//! person typed, checked for its form before the decimals are known (a CLI parses its arguments
//! before it connects), and [`TokenDecimals::parse`] turns it into base units exactly.

use std::{fmt, str::FromStr};

use alloy::{
    network::Network,
    primitives::{
        Address, U256,
        utils::{Unit, format_units, parse_units},
    },
    providers::Provider,
};

/// The `sol!` expansion of [`IERC20Metadata`].
// Its generated call and instance types cannot carry docs (as in `crate::bindings`).
#[allow(missing_docs)]
mod metadata {
    alloy::sol! {
        /// The optional metadata part of ERC-20 (OpenZeppelin's `IERC20Metadata`), reduced to
        /// what the tools read: the token's decimals.
        #[sol(rpc)]
        interface IERC20Metadata {
            /// How many base units make one token: 10^decimals.
            function decimals() external view returns (uint8);
        }
    }
}

pub use metadata::IERC20Metadata;

/// A token's `decimals()`: one token is 10^decimals base units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenDecimals(Unit);

impl TokenDecimals {
    /// Decimals of `decimals` digits; `None` above 77 (10^78 does not fit 256 bits, so no ERC-20
    /// amount could be written with them).
    pub fn new(decimals: u8) -> Option<Self> {
        Unit::new(decimals).map(Self)
    }

    /// The number of decimals.
    pub const fn get(self) -> u8 {
        self.0.get()
    }

    /// Reads `decimals()` from the ERC-20 token at `token`.
    pub async fn read<P: Provider<N>, N: Network>(
        provider: P,
        token: Address,
    ) -> Result<Self, DecimalsError> {
        let decimals = IERC20Metadata::new(token, provider)
            .decimals()
            .call()
            .await
            .map_err(|source| DecimalsError::Call {
                token,
                source: Box::new(source),
            })?;
        Self::new(decimals).ok_or(DecimalsError::Unsupported { token, decimals })
    }

    /// `units` base units as a decimal number of tokens without trailing zeros: with 18
    /// decimals `1500000000000000000` is `"1.5"` and `2000000000000000000` is `"2"`.
    pub fn format(self, units: u128) -> String {
        self.format_u256(U256::from(units))
    }

    /// [`format`](Self::format) for a 256-bit amount (a balance).
    pub fn format_u256(self, units: U256) -> String {
        // `format_units` always writes every decimal ("1.500000"); trim them for people.
        let text = format_units(units, self.get()).unwrap_or_else(|_| units.to_string());
        match text.split_once('.') {
            Some((whole, fraction)) => {
                let fraction = fraction.trim_end_matches('0');
                if fraction.is_empty() {
                    whole.to_owned()
                } else {
                    format!("{whole}.{fraction}")
                }
            }
            None => text,
        }
    }

    /// `units` with these decimals, for `Display`.
    pub const fn amount(self, units: u128) -> TokenAmount {
        TokenAmount {
            units,
            decimals: self,
        }
    }

    /// Base units of the decimal amount `text` (`10`, `0.5`, `.25`), exactly: an amount finer than
    /// one base unit is refused, never rounded.
    pub fn parse(self, text: &str) -> Result<u128, AmountError> {
        text.parse::<TokenAmountText>()?.to_units(self)
    }
}

impl fmt::Display for TokenDecimals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.get())
    }
}

/// An amount in base units with its token's decimals; displays as decimal tokens (`1.5`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenAmount {
    /// Base units.
    pub units: u128,
    /// The token's decimals.
    pub decimals: TokenDecimals,
}

impl fmt::Display for TokenAmount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decimals.format(self.units))
    }
}

/// A non-negative decimal number of tokens as typed (`10`, `0.5`, `.25`), its form checked; its
/// base units need the token's decimals ([`to_units`](Self::to_units)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAmountText {
    /// The digits before the point (possibly empty).
    whole: String,
    /// The digits after the point, trailing zeros removed (they change nothing).
    fraction: String,
}

impl TokenAmountText {
    /// Base units of this amount with `decimals`; an error when it has more significant decimals
    /// than the token or does not fit 128 bits.
    pub fn to_units(&self, decimals: TokenDecimals) -> Result<u128, AmountError> {
        if self.fraction.len() > usize::from(decimals.get()) {
            return Err(AmountError::TooManyDecimals {
                amount: self.to_string(),
                given: self.fraction.len(),
                decimals,
            });
        }
        let too_large = || AmountError::TooLarge(self.to_string());
        let units = parse_units(&self.to_string(), decimals.get())
            .map_err(|_| too_large())?
            .get_absolute();
        u128::try_from(units).map_err(|_| too_large())
    }
}

impl FromStr for TokenAmountText {
    type Err = AmountError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        // alloy's parser would take `-1` (as a signed amount) and `1_000`-like junk differently;
        // accept plain decimals only.
        if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
            return Err(AmountError::Malformed(text.to_owned()));
        }
        Ok(Self {
            whole: if whole.is_empty() { "0" } else { whole }.to_owned(),
            fraction: fraction.trim_end_matches('0').to_owned(),
        })
    }
}

impl fmt::Display for TokenAmountText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.fraction.is_empty() {
            f.write_str(&self.whole)
        } else {
            write!(f, "{}.{}", self.whole, self.fraction)
        }
    }
}

/// Why a typed token amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain non-negative decimal number.
    #[error("{0:?} is not a token amount such as 10, 0.5 or .25 (no sign, no exponent)")]
    Malformed(String),
    /// More significant decimals than the token has: the amount is finer than one base unit.
    #[error(
        "{amount} tokens has {given} decimals but the token has only {decimals}: its smallest amount is {}",
        smallest(*decimals)
    )]
    TooManyDecimals {
        /// The amount as typed (trailing zeros removed).
        amount: String,
        /// Its significant decimals.
        given: usize,
        /// The token's decimals.
        decimals: TokenDecimals,
    },
    /// More base units than 128 bits hold.
    #[error("{0} tokens is too large")]
    TooLarge(String),
}

/// One base unit in tokens (`0.000001` with 6 decimals, `1` with none).
fn smallest(decimals: TokenDecimals) -> String {
    decimals.format(1)
}

/// Why a token's decimals could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecimalsError {
    /// The `decimals()` call failed (the RPC, or a token without the ERC-20 metadata part).
    #[error("cannot read decimals() of the staking token {token}: {source}")]
    Call {
        /// The token.
        token: Address,
        /// The call's error (boxed: it is large, and this error travels inside others).
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// The token says more decimals than any 256-bit amount can be written with.
    #[error("the staking token {token} says it has {decimals} decimals; at most 77 are supported")]
    Unsupported {
        /// The token.
        token: Address,
        /// What it said.
        decimals: u8,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimals(n: u8) -> TokenDecimals {
        TokenDecimals::new(n).expect("at most 77")
    }

    #[test]
    fn amounts_print_without_trailing_zeros() {
        let d18 = decimals(18);
        assert_eq!(d18.format(0), "0");
        assert_eq!(d18.format(1_500 * 10u128.pow(18)), "1500");
        assert_eq!(d18.format(15 * 10u128.pow(17)), "1.5");
        assert_eq!(d18.format(1), "0.000000000000000001");
        assert_eq!(
            d18.format(3_166_666_666_666_666_666),
            "3.166666666666666666"
        );
        let d6 = decimals(6);
        assert_eq!(d6.format(1_500_000), "1.5");
        assert_eq!(d6.format(10_000_000), "10");
        assert_eq!(d6.format(1), "0.000001");
        assert_eq!(d6.amount(2_250_000).to_string(), "2.25");
        assert_eq!(
            d6.format_u256(U256::from(u128::MAX) + U256::from(1)),
            "340282366920938463463374607431768.211456"
        );
        let d0 = decimals(0);
        assert_eq!(d0.format(1_000), "1000");
        assert_eq!(d0.format(0), "0");
    }

    #[test]
    fn amounts_parse_exactly_in_the_tokens_decimals() {
        let d6 = decimals(6);
        assert_eq!(d6.parse("10"), Ok(10_000_000));
        assert_eq!(d6.parse("0.5"), Ok(500_000));
        assert_eq!(d6.parse(".25"), Ok(250_000));
        assert_eq!(d6.parse("1.000001"), Ok(1_000_001));
        // Trailing zeros are not finer amounts.
        assert_eq!(d6.parse("1.5000000000"), Ok(1_500_000));
        let error = d6.parse("1.0000001").unwrap_err();
        assert!(matches!(
            error,
            AmountError::TooManyDecimals { given: 7, .. }
        ));
        assert_eq!(
            error.to_string(),
            "1.0000001 tokens has 7 decimals but the token has only 6: its smallest amount is 0.000001"
        );
        let d18 = decimals(18);
        assert_eq!(d18.parse("10"), Ok(10 * 10u128.pow(18)));
        assert_eq!(d18.parse("1.000000000000000001"), Ok(10u128.pow(18) + 1));
        assert!(
            d18.parse("1.0000000000000000001")
                .unwrap_err()
                .to_string()
                .contains("has only 18")
        );
        assert_eq!(decimals(0).parse("7"), Ok(7));
        assert!(
            decimals(0)
                .parse("7.5")
                .unwrap_err()
                .to_string()
                .contains("smallest amount is 1")
        );
        for bad in ["-1", "1e3", ".", "", "1.2.3", "+1", "0x10", "1 000"] {
            assert_eq!(
                d6.parse(bad),
                Err(AmountError::Malformed(bad.to_owned())),
                "{bad:?}"
            );
        }
        assert!(matches!(
            d18.parse("340282366920938463464"),
            Err(AmountError::TooLarge(_))
        ));
        assert_eq!(d6.parse(&d6.format(u128::MAX)), Ok(u128::MAX));
    }

    #[test]
    fn typed_amounts_wait_for_the_decimals() {
        let text: TokenAmountText = "0.50".parse().expect("a decimal");
        assert_eq!(text.to_string(), "0.5");
        assert_eq!(text.to_units(decimals(6)), Ok(500_000));
        assert_eq!(text.to_units(decimals(18)), Ok(5 * 10u128.pow(17)));
        assert!(text.to_units(decimals(0)).is_err());
        assert!(TokenDecimals::new(77).is_some());
        assert!(TokenDecimals::new(78).is_none());
    }
}
