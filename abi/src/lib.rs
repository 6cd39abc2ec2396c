//! verinfer-abi
