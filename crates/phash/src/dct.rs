//! Unnormalised DCT-II of length 32, reproducing `scipy.fftpack.dct` bit for bit.
//!
//! scipy computes the DCT with pocketfft (`T_dcst23`): the input is folded, run through
//! a backward real FFT (FFTPACK radix passes 2, 4, 4 for length 32) and untwisted with
//! cosine twiddles. A direct O(N²) cosine sum gives the same values to ~1e-10 but not
//! the same bits: for flat or symmetric images pocketfft yields *exact* zeros where a
//! direct sum yields ±1e-13 noise, and the median comparison of the hash then flips.
//! So this module performs the same floating-point operations in the same order
//! (plain IEEE-754 f64, no fused multiply-add — as scipy's x86-64 build does), with
//! twiddle factors computed the way pocketfft computes them.

use std::sync::LazyLock;

/// Transform length (imagehash: `hash_size * highfreq_factor` = 8 * 4).
pub const DCT_LEN: usize = 32;

/// Twiddle tables, computed once.
struct Plan {
    /// Radix-2 pass (ido = 16, l1 = 1): `(ip - 1) * (ido - 1)` = 15 values.
    radix2: [f64; 15],
    /// First radix-4 pass (ido = 4, l1 = 2): 3 * 3 values.
    radix4: [f64; 9],
    /// `cos(2π (i + 1) / 128)` for the DCT untwisting step.
    cosines: [f64; DCT_LEN],
}

static PLAN: LazyLock<Plan> = LazyLock::new(Plan::new);

impl Plan {
    fn new() -> Self {
        let roots = UnitRoots::new(DCT_LEN);
        // FFTPACK stores, per pass, interleaved (re, im) of root^(j * l1 * i).
        let stage = |ip: usize, l1: usize, out: &mut [f64]| {
            let ido = DCT_LEN / (l1 * ip);
            for j in 1..ip {
                for i in 1..=(ido - 1) / 2 {
                    let (re, im) = roots.get(j * l1 * i);
                    out[(j - 1) * (ido - 1) + 2 * i - 2] = re;
                    out[(j - 1) * (ido - 1) + 2 * i - 1] = im;
                }
            }
        };
        let mut radix2 = [0.0; 15];
        stage(2, 1, &mut radix2);
        let mut radix4 = [0.0; 9];
        stage(4, 2, &mut radix4);

        let quarter = UnitRoots::new(4 * DCT_LEN);
        let cosines = std::array::from_fn(|i| quarter.get(i + 1).0);
        Self {
            radix2,
            radix4,
            cosines,
        }
    }
}

/// `exp(2πi k / n)` for `0 <= k < n`, computed like pocketfft's `sincos_2pibyn`:
/// libm sin/cos of an octant-reduced angle, tabulated in two levels whose product
/// (rounded in f64) gives the root.
struct UnitRoots {
    n: usize,
    shift: u32,
    mask: usize,
    fine: Vec<(f64, f64)>,
    coarse: Vec<(f64, f64)>,
}

impl UnitRoots {
    fn new(n: usize) -> Self {
        // pocketfft: Thigh(0.25L * pi / n), in long double. For the power-of-two n
        // used here that is an exact scaling of π, so the f64 product is identical.
        let ang = 0.25 * std::f64::consts::PI / n as f64;
        let nval = (n + 2) / 2;
        let mut shift = 1;
        while (1usize << shift) * (1usize << shift) < nval {
            shift += 1;
        }
        let mask = (1usize << shift) - 1;
        let fine = (0..=mask)
            .map(|i| {
                if i == 0 {
                    (1.0, 0.0)
                } else {
                    octant_root(i, n, ang)
                }
            })
            .collect();
        let coarse_len = (nval + mask) / (mask + 1);
        let coarse = (0..coarse_len)
            .map(|i| {
                if i == 0 {
                    (1.0, 0.0)
                } else {
                    octant_root(i * (mask + 1), n, ang)
                }
            })
            .collect();
        Self {
            n,
            shift,
            mask,
            fine,
            coarse,
        }
    }

    fn get(&self, idx: usize) -> (f64, f64) {
        let (idx, conjugate) = if 2 * idx <= self.n {
            (idx, false)
        } else {
            (self.n - idx, true)
        };
        let (ar, ai) = self.fine[idx & self.mask];
        let (br, bi) = self.coarse[idx >> self.shift];
        let re = ar * br - ai * bi;
        let im = ar * bi + ai * br;
        (re, if conjugate { -im } else { im })
    }
}

/// `exp(2πi x / n)` from sin/cos of an angle reduced to the first octant.
fn octant_root(x: usize, n: usize, ang: f64) -> (f64, f64) {
    let at = |k: usize| k as f64 * ang;
    let x = x << 3;
    if x < 4 * n {
        if x < 2 * n {
            if x < n {
                return (at(x).cos(), at(x).sin());
            }
            return (at(2 * n - x).sin(), at(2 * n - x).cos());
        }
        let x = x - 2 * n;
        if x < n {
            return (-at(x).sin(), at(x).cos());
        }
        return (-at(2 * n - x).cos(), at(2 * n - x).sin());
    }
    let x = 8 * n - x;
    if x < 2 * n {
        if x < n {
            return (at(x).cos(), -at(x).sin());
        }
        return (at(2 * n - x).sin(), -at(2 * n - x).cos());
    }
    let x = x - 2 * n;
    if x < n {
        return (-at(x).sin(), -at(x).cos());
    }
    (-at(2 * n - x).cos(), -at(2 * n - x).sin())
}

/// In-place unnormalised DCT-II: `y[k] = 2 Σ x[n] cos(π k (2n + 1) / 64)`, bit-identical
/// to `scipy.fftpack.dct(x)` (type 2, `norm=None`).
pub fn dct2_32(c: &mut [f64; DCT_LEN]) {
    let plan = &*PLAN;
    const N: usize = DCT_LEN;
    const HALF: usize = N / 2;

    c[0] *= 2.0;
    c[N - 1] *= 2.0;
    for k in (1..N - 1).step_by(2) {
        let (a, b) = (c[k + 1], c[k]);
        c[k + 1] = a - b;
        c[k] = a + b;
    }

    backward_rfft_32(c, plan);

    for k in 1..HALF {
        let kc = N - k;
        let t1 = plan.cosines[k - 1] * c[kc] + plan.cosines[kc - 1] * c[k];
        let t2 = plan.cosines[k - 1] * c[k] - plan.cosines[kc - 1] * c[kc];
        c[k] = 0.5 * (t1 + t2);
        c[kc] = 0.5 * (t1 - t2);
    }
    c[HALF] *= plan.cosines[HALF - 1];
}

/// FFTPACK backward real FFT (half-complex to real), unscaled, length 32.
fn backward_rfft_32(c: &mut [f64; DCT_LEN], plan: &Plan) {
    let mut scratch = [0.0; DCT_LEN];
    // Factors [2, 4, 4]; each pass reads one buffer and writes the other.
    radix2_backward(16, 1, c, &mut scratch, &plan.radix2);
    radix4_backward(4, 2, &scratch, c, &plan.radix4);
    radix4_backward(1, 8, c, &mut scratch, &[]);
    *c = scratch;
}

fn radix2_backward(ido: usize, l1: usize, cc: &[f64], ch: &mut [f64], wa: &[f64]) {
    let cc_at = |a: usize, b: usize, k: usize| cc[a + ido * (b + 2 * k)];
    let ch_idx = |a: usize, k: usize, b: usize| a + ido * (k + l1 * b);

    for k in 0..l1 {
        let (x, y) = (cc_at(0, 0, k), cc_at(ido - 1, 1, k));
        ch[ch_idx(0, k, 0)] = x + y;
        ch[ch_idx(0, k, 1)] = x - y;
    }
    if ido.is_multiple_of(2) {
        for k in 0..l1 {
            ch[ch_idx(ido - 1, k, 0)] = 2.0 * cc_at(ido - 1, 0, k);
            ch[ch_idx(ido - 1, k, 1)] = -2.0 * cc_at(0, 1, k);
        }
    }
    if ido <= 2 {
        return;
    }
    for k in 0..l1 {
        for i in (2..ido).step_by(2) {
            let ic = ido - i;
            let (a, b) = (cc_at(i - 1, 0, k), cc_at(ic - 1, 1, k));
            ch[ch_idx(i - 1, k, 0)] = a + b;
            let tr2 = a - b;
            let (a, b) = (cc_at(i, 0, k), cc_at(ic, 1, k));
            let ti2 = a + b;
            ch[ch_idx(i, k, 0)] = a - b;
            let (wr, wi) = (wa[i - 2], wa[i - 1]);
            ch[ch_idx(i, k, 1)] = wr * ti2 + wi * tr2;
            ch[ch_idx(i - 1, k, 1)] = wr * tr2 - wi * ti2;
        }
    }
}

fn radix4_backward(ido: usize, l1: usize, cc: &[f64], ch: &mut [f64], wa: &[f64]) {
    const SQRT2: f64 = std::f64::consts::SQRT_2;
    let cc_at = |a: usize, b: usize, k: usize| cc[a + ido * (b + 4 * k)];
    let ch_idx = |a: usize, k: usize, b: usize| a + ido * (k + l1 * b);

    for k in 0..l1 {
        let (a, b) = (cc_at(0, 0, k), cc_at(ido - 1, 3, k));
        let (tr2, tr1) = (a + b, a - b);
        let tr3 = 2.0 * cc_at(ido - 1, 1, k);
        let tr4 = 2.0 * cc_at(0, 2, k);
        ch[ch_idx(0, k, 0)] = tr2 + tr3;
        ch[ch_idx(0, k, 2)] = tr2 - tr3;
        ch[ch_idx(0, k, 3)] = tr1 + tr4;
        ch[ch_idx(0, k, 1)] = tr1 - tr4;
    }
    if ido.is_multiple_of(2) {
        for k in 0..l1 {
            let (a, b) = (cc_at(0, 3, k), cc_at(0, 1, k));
            let (ti1, ti2) = (a + b, a - b);
            let (a, b) = (cc_at(ido - 1, 0, k), cc_at(ido - 1, 2, k));
            let (tr2, tr1) = (a + b, a - b);
            ch[ch_idx(ido - 1, k, 0)] = tr2 + tr2;
            ch[ch_idx(ido - 1, k, 1)] = SQRT2 * (tr1 - ti1);
            ch[ch_idx(ido - 1, k, 2)] = ti2 + ti2;
            ch[ch_idx(ido - 1, k, 3)] = -SQRT2 * (tr1 + ti1);
        }
    }
    if ido <= 2 {
        return;
    }
    for k in 0..l1 {
        for i in (2..ido).step_by(2) {
            let ic = ido - i;
            let (a, b) = (cc_at(i - 1, 0, k), cc_at(ic - 1, 3, k));
            let (tr2, tr1) = (a + b, a - b);
            let (a, b) = (cc_at(i, 0, k), cc_at(ic, 3, k));
            let (ti1, ti2) = (a + b, a - b);
            let (a, b) = (cc_at(i, 2, k), cc_at(ic, 1, k));
            let (tr4, ti3) = (a + b, a - b);
            let (a, b) = (cc_at(i - 1, 2, k), cc_at(ic - 1, 1, k));
            let (tr3, ti4) = (a + b, a - b);
            ch[ch_idx(i - 1, k, 0)] = tr2 + tr3;
            let cr3 = tr2 - tr3;
            ch[ch_idx(i, k, 0)] = ti2 + ti3;
            let ci3 = ti2 - ti3;
            let (cr4, cr2) = (tr1 + tr4, tr1 - tr4);
            let (ci2, ci4) = (ti1 + ti4, ti1 - ti4);
            for (x, (ci, cr)) in [(ci2, cr2), (ci3, cr3), (ci4, cr4)].into_iter().enumerate() {
                let (wr, wi) = (wa[i - 2 + x * (ido - 1)], wa[i - 1 + x * (ido - 1)]);
                ch[ch_idx(i, k, x + 1)] = wr * ci + wi * cr;
                ch[ch_idx(i - 1, k, x + 1)] = wr * cr - wi * ci;
            }
        }
    }
}

/// Low-frequency corner of the 2-D DCT: `scipy.fftpack.dct(scipy.fftpack.dct(p, axis=0),
/// axis=1)[:8, :8]`, row-major. Only the rows that are kept get the second transform.
pub fn dct2d_low_frequencies(pixels: &[u8; DCT_LEN * DCT_LEN]) -> [f64; 64] {
    const KEEP: usize = 8;
    // axis=0: transform every column; keep the first KEEP outputs of each.
    let mut rows = [[0.0f64; DCT_LEN]; KEEP];
    for col in 0..DCT_LEN {
        let mut line: [f64; DCT_LEN] =
            std::array::from_fn(|row| f64::from(pixels[row * DCT_LEN + col]));
        dct2_32(&mut line);
        for (row, value) in rows.iter_mut().zip(line) {
            row[col] = value;
        }
    }
    // axis=1: transform the kept rows.
    let mut out = [0.0; KEEP * KEEP];
    for (row, chunk) in rows.iter_mut().zip(out.chunks_exact_mut(KEEP)) {
        dct2_32(row);
        chunk.copy_from_slice(&row[..KEEP]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(x: &[f64; DCT_LEN]) -> [f64; DCT_LEN] {
        std::array::from_fn(|k| {
            2.0 * x
                .iter()
                .enumerate()
                .map(|(n, v)| {
                    v * (std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / 64.0).cos()
                })
                .sum::<f64>()
        })
    }

    #[test]
    fn matches_the_dct_ii_definition() {
        let x: [f64; DCT_LEN] = std::array::from_fn(|i| ((i * 37 + 11) % 256) as f64 - 100.0);
        let mut y = x;
        dct2_32(&mut y);
        for (k, (got, want)) in y.iter().zip(direct(&x)).enumerate() {
            assert!((got - want).abs() < 1e-9, "k={k}: {got} vs {want}");
        }
    }

    #[test]
    fn constant_input_gives_exact_zeros() {
        // The property a direct cosine sum lacks and the hash of flat images relies on.
        let mut y = [77.0; DCT_LEN];
        dct2_32(&mut y);
        assert_eq!(y[0], 2.0 * 32.0 * 77.0);
        assert!(y[1..].iter().all(|&v| v == 0.0), "{y:?}");
    }

    #[test]
    fn known_scipy_values() {
        // scipy.fftpack.dct(np.arange(32.0))[:4] (printed with repr).
        let mut y: [f64; DCT_LEN] = std::array::from_fn(|i| i as f64);
        dct2_32(&mut y);
        assert_eq!(y[0], 992.0);
        assert_eq!(y[2], 0.0);
        assert_eq!(y[1].to_bits(), SCIPY_ARANGE_1.to_bits(), "{}", y[1]);
        assert_eq!(y[3].to_bits(), SCIPY_ARANGE_3.to_bits(), "{}", y[3]);
    }

    const SCIPY_ARANGE_1: f64 = -414.84476091447783;
    const SCIPY_ARANGE_3: f64 = -45.94445993879662;

    #[test]
    fn twiddles_are_unit_roots() {
        let roots = UnitRoots::new(128);
        for k in 0..128 {
            let (re, im) = roots.get(k);
            let angle = 2.0 * std::f64::consts::PI * k as f64 / 128.0;
            assert!(
                (re - angle.cos()).abs() < 1e-15 && (im - angle.sin()).abs() < 1e-15,
                "k={k}"
            );
        }
    }
}
