//! The node's gas headroom constants are the bounds the contract tests assert
//! (`contracts/test/GasHeadroom.t.sol`): changing one without the other fails here.

use std::path::Path;

/// The value of `uint256 internal constant NAME = 123_456;` in `source`.
fn solidity_constant(source: &str, name: &str) -> u64 {
    let needle = format!("uint256 internal constant {name} = ");
    let start = source
        .find(&needle)
        .unwrap_or_else(|| panic!("GasHeadroom.t.sol declares no {name}"))
        + needle.len();
    let end = start + source[start..].find(';').expect("a terminated constant");
    source[start..end]
        .replace('_', "")
        .trim()
        .parse()
        .unwrap_or_else(|error| panic!("{name}: {error}"))
}

#[test]
fn the_headroom_constants_are_the_ones_the_contract_tests_assert() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/test/GasHeadroom.t.sol");
    let source = std::fs::read_to_string(&path).expect("read GasHeadroom.t.sol");
    assert_eq!(
        solidity_constant(&source, "SETTLE_HEADROOM"),
        verinfer_abi::SETTLE_HEADROOM
    );
    assert_eq!(
        solidity_constant(&source, "LAST_COMMIT_HEADROOM"),
        verinfer_abi::LAST_COMMIT_HEADROOM
    );
}
