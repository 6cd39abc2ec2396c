//! Explorer queries.
pub struct ExplorerQueries;
pub struct NodeTaskRow;
pub struct SlashRow;
pub struct TimelineEvent;
