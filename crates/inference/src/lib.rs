//! verinfer-inference
