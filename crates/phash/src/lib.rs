//! verinfer-phash
