//! A 64-bit pHash drawn as an 8×8 grid (one SVG path for all set cells, so a 16-image task's
//! 96 grids stay small): bit 63 (the most significant, the first of the hash's hex form) is the
//! top-left cell, rows read left to right.

use std::fmt::Write as _;

use maud::{Markup, PreEscaped, html};

/// The path of the cells whose bit is set in `bits`.
fn cells_path(bits: u64) -> String {
    let mut path = String::with_capacity(usize::try_from(bits.count_ones()).unwrap_or(0) * 16);
    for index in 0..64u32 {
        if bits >> (63 - index) & 1 == 1 {
            let (row, column) = (index / 8, index % 8);
            // A unit square; `write!` into a String cannot fail.
            let _ = write!(path, "M{column} {row}h1v1h-1z");
        }
    }
    path
}

/// A pHash as an 8×8 grid of its bits (set bits dark), with a text alternative.
pub fn phash_grid(phash: u64, label: &str) -> Markup {
    let path = cells_path(phash);
    let aria = format!("{label}: pHash {phash:016x} as an 8 by 8 grid of bits");
    html! {
        svg.bits viewBox="0 0 8 8" role="img" aria-label=(aria) shape-rendering="crispEdges" {
            title { (aria) }
            path.on d=(path) {}
        }
    }
}

/// The bits in which two pHashes differ (set where they differ), with the count in the label.
pub fn diff_grid(a: u64, b: u64, label: &str) -> Markup {
    let diff = a ^ b;
    let aria = format!(
        "{label}: {} differing bits of 64, marked in an 8 by 8 grid",
        diff.count_ones()
    );
    html! {
        svg.bits viewBox="0 0 8 8" role="img" aria-label=(aria) shape-rendering="crispEdges" {
            title { (aria) }
            path.diff d=(PreEscaped(cells_path(diff))) {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_significant_bit_is_the_top_left_cell() {
        assert_eq!(cells_path(1 << 63), "M0 0h1v1h-1z");
        assert_eq!(cells_path(1), "M7 7h1v1h-1z");
        assert_eq!(cells_path(0), "");
        assert_eq!(cells_path(u64::MAX).matches('M').count(), 64);
    }

    #[test]
    fn the_diff_grid_marks_exactly_the_differing_bits() {
        let markup = diff_grid(0b1011, 0b0110, "pair").into_string();
        assert!(markup.contains("3 differing bits of 64"));
        assert_eq!(markup.matches("h1v1h-1z").count(), 3);
    }
}
