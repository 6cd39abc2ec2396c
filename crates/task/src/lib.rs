//! verinfer-task
