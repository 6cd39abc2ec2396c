//! pHash bit grids.
