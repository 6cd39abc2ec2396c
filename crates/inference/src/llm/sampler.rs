//! Token selection: greedy argmax, or sampling driven by a ChaCha20 stream keyed by the task
//! seed. Written here rather than taken from candle's `LogitsProcessor` because the chosen
//! tokens are consensus bytes: they must not move when a dependency changes its RNG or its
//! sampling code.
//!
//! # Algorithm (task format v2, consensus-relevant)
//!
//! The logits `z_0 … z_{V-1}` are the model's last-position output converted to `f32`, one per
//! token id. A `NaN` logit is an error; sampling also refuses `+∞` (`−∞` is a token of
//! probability 0).
//!
//! **Greedy**: the token with the largest logit; of equal logits the lowest token id. No random
//! number is drawn.
//!
//! **Uniform stream**: ChaCha20 with 20 rounds (`rand_chacha::ChaCha20Rng`), keyed exactly like
//! the diffusion noise ([`crate::noise`]): the key is the seed as 8 little-endian bytes followed
//! by 24 zero bytes, the 64-bit block counter starts at 0 and the 64-bit stream (nonce) is 0 (the
//! one generation of a text task). The `n`-th `u64` word `w_n` is keystream bytes `8n..8n+8`
//! read little-endian, and `u_n = (w_n >> 11) · 2^-53`, in `[0, 1)`. Sampled step `n` (the
//! `n`-th generated token, from 0) uses `u_n`: exactly one word per sampled token, also when a
//! single candidate is left.
//!
//! **Sampling** at temperature `T`, with optional `top_k` and `top_p`, in IEEE-754 `f64`:
//!
//! 1. Rank: order the token ids by logit, largest first (`−0.0` equals `+0.0`); equal logits
//!    in ascending token id.
//! 2. Top-k: keep the first `min(top_k, V)` ranked tokens (all of them without `top_k`).
//! 3. Softmax weights: `w_i = exp((f64(z_i) − f64(z_f)) / T)` where `z_f` is the first kept
//!    token's logit and `exp` is the pure-Rust `libm` one, so the platform's maths library
//!    cannot differ. The weights are never divided by their sum; the first one is 1, so even a
//!    vanishing temperature cannot overflow them.
//! 4. Top-p (only when `top_p < 1`): `S = Σ w_i` over the kept tokens, added in rank order;
//!    keep the shortest ranked prefix whose running sum (added in rank order) reaches
//!    `top_p · S`, i.e. up to and including the first token where `sum ≥ top_p · S`.
//! 5. Draw: `S' = Σ w_i` over what is left, added in rank order; `target = u_n · S'`; walking
//!    the kept tokens in rank order with a running sum, pick the first token where
//!    `target < sum`. Should rounding leave none, the last kept token is picked.
//!
//! The order is temperature, then top-k, then top-p (the top-p mass is relative to what top-k
//! kept), as in Hugging Face transformers' default warpers. The test vectors in this module's
//! tests are printed in `docs/task-format.md` §6 and recomputed independently by
//! `crates/inference/testdata/sampler_vectors.py`.

use rand::RngCore;
use rand_chacha::ChaCha20Rng;

use super::TextSampling;

/// Why a token could not be selected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// The temperature is not a finite positive number.
    #[error("temperature {0} is not positive")]
    Temperature(f64),
    /// `top_p` is outside `(0, 1]`.
    #[error("top_p {0} is not in (0, 1]")]
    TopP(f64),
    /// `top_k` is 0.
    #[error("top_k must be at least 1")]
    TopK,
    /// The model returned no logits.
    #[error("the model returned no logits")]
    NoLogits,
    /// A logit the selection cannot use (`NaN`; `+∞` when sampling).
    #[error("the logit of token {token} is {value}")]
    BadLogit {
        /// The token id.
        token: u32,
        /// Its logit.
        value: f32,
    },
    /// Every logit is `−∞`: there is nothing to sample.
    #[error("every logit is -inf")]
    AllNegInfinite,
}

impl SamplerError {
    /// Whether the error is in the parameters (rather than in the model's logits).
    pub fn is_params(&self) -> bool {
        matches!(self, Self::Temperature(_) | Self::TopP(_) | Self::TopK)
    }
}

/// The uniform numbers of a sampled generation (see the module docs).
#[derive(Debug, Clone)]
pub struct UniformStream {
    rng: ChaCha20Rng,
}

impl UniformStream {
    /// Stream `stream` of ChaCha20 keyed by `seed`; a text task reads stream 0.
    pub fn new(seed: u64, stream: u64) -> Self {
        // The same keying as the diffusion noise.
        Self {
            rng: crate::noise::seeded_chacha20(seed, stream),
        }
    }

    /// The next raw 64-bit word.
    pub fn next_word(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// The next uniform number in `[0, 1)`: the top 53 bits of the next word.
    pub fn next_uniform(&mut self) -> f64 {
        const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
        (self.next_word() >> 11) as f64 * SCALE
    }
}

/// The greedy choice: the largest logit, the lowest token id among equals.
pub fn argmax(logits: &[f32]) -> Result<u32, SamplerError> {
    let mut best: Option<(usize, f32)> = None;
    for (id, &z) in logits.iter().enumerate() {
        if z.is_nan() {
            return Err(bad_logit(id, z));
        }
        if best.is_none_or(|(_, value)| z > value) {
            best = Some((id, z));
        }
    }
    best.map(|(id, _)| id as u32).ok_or(SamplerError::NoLogits)
}

/// Picks one token per generation step, greedily or from the seeded stream.
#[derive(Debug, Clone)]
pub struct TokenSampler {
    sampling: TextSampling,
    uniforms: UniformStream,
    /// Scratch: rank keys, then the kept tokens' ids.
    ranked: Vec<u64>,
    /// Scratch: the kept tokens' weights, in rank order.
    weights: Vec<f64>,
}

impl TokenSampler {
    /// A sampler for a generation seeded with `seed`; checks the sampling parameters.
    pub fn new(seed: u64, sampling: TextSampling) -> Result<Self, SamplerError> {
        if let TextSampling::Sample {
            temperature,
            top_p,
            top_k,
        } = sampling
        {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(SamplerError::Temperature(temperature));
            }
            if let Some(p) = top_p
                && !(p > 0.0 && p <= 1.0)
            {
                return Err(SamplerError::TopP(p));
            }
            if top_k == Some(0) {
                return Err(SamplerError::TopK);
            }
        }
        Ok(Self {
            sampling,
            uniforms: UniformStream::new(seed, 0),
            ranked: Vec::new(),
            weights: Vec::new(),
        })
    }

    /// The next token for `logits` (one per token id).
    pub fn next_token(&mut self, logits: &[f32]) -> Result<u32, SamplerError> {
        match self.sampling {
            TextSampling::Greedy => argmax(logits),
            TextSampling::Sample {
                temperature,
                top_p,
                top_k,
            } => self.sample(logits, temperature, top_k, top_p),
        }
    }

    fn sample(
        &mut self,
        logits: &[f32],
        temperature: f64,
        top_k: Option<u32>,
        top_p: Option<f64>,
    ) -> Result<u32, SamplerError> {
        if logits.is_empty() {
            return Err(SamplerError::NoLogits);
        }
        if let Some((id, &z)) = logits
            .iter()
            .enumerate()
            .find(|(_, z)| z.is_nan() || **z == f32::INFINITY)
        {
            return Err(bad_logit(id, z));
        }
        // The word is drawn whatever the logits, so step n always reads word n.
        let uniform = self.uniforms.next_uniform();

        // 1–2: rank (keys are unique, so unstable sorting is deterministic) and cut to top-k.
        let ranked = &mut self.ranked;
        ranked.clear();
        ranked.extend(logits.iter().enumerate().map(|(id, &z)| rank_key(z, id)));
        let keep = top_k.map_or(ranked.len(), |k| (k as usize).min(ranked.len()));
        if keep < ranked.len() {
            ranked.select_nth_unstable(keep - 1);
            ranked.truncate(keep);
        }
        ranked.sort_unstable();

        // 3: unnormalised softmax weights relative to the largest kept logit.
        let logit = |key: u64| f64::from(logits[key_id(key) as usize]);
        let first = logit(ranked[0]);
        if first == f64::NEG_INFINITY {
            return Err(SamplerError::AllNegInfinite);
        }
        let weights = &mut self.weights;
        weights.clear();
        weights.extend(
            ranked
                .iter()
                .map(|&key| libm::exp((logit(key) - first) / temperature)),
        );

        // 4: top-p.
        if let Some(p) = top_p
            && p < 1.0
        {
            let threshold = p * rank_sum(weights);
            let mut sum = 0.0;
            let cut = weights
                .iter()
                .position(|&w| {
                    sum += w;
                    sum >= threshold
                })
                .map_or(weights.len(), |i| i + 1);
            weights.truncate(cut);
        }

        // 5: draw.
        let target = uniform * rank_sum(weights);
        let mut sum = 0.0;
        let index = weights
            .iter()
            .position(|&w| {
                sum += w;
                target < sum
            })
            .unwrap_or(weights.len() - 1);
        Ok(key_id(ranked[index]))
    }
}

/// The weights added one by one in rank order, from 0 (the order the spec fixes).
fn rank_sum(weights: &[f64]) -> f64 {
    weights.iter().fold(0.0, |sum, &w| sum + w)
}

fn bad_logit(id: usize, value: f32) -> SamplerError {
    SamplerError::BadLogit {
        token: id as u32,
        value,
    }
}

/// A key whose ascending order is logit descending, then token id ascending. `NaN` never
/// reaches here.
fn rank_key(logit: f32, id: usize) -> u64 {
    // -0.0 + 0.0 = +0.0, so both zeros rank alike.
    let bits = (logit + 0.0).to_bits();
    // Map the float's order onto u32's: flip negatives entirely, set the sign bit of positives.
    let ascending = if bits >> 31 == 1 {
        !bits
    } else {
        bits | 0x8000_0000
    };
    (u64::from(!ascending) << 32) | id as u64
}

fn key_id(key: u64) -> u32 {
    key as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(temperature: f64, top_k: Option<u32>, top_p: Option<f64>) -> TextSampling {
        TextSampling::Sample {
            temperature,
            top_p,
            top_k,
        }
    }

    fn draw(seed: u64, sampling: TextSampling, logits: &[f32], steps: usize) -> Vec<u32> {
        let mut sampler = TokenSampler::new(seed, sampling).expect("valid sampling");
        (0..steps)
            .map(|_| sampler.next_token(logits).expect("token"))
            .collect()
    }

    #[test]
    fn rank_keys_order_logits_descending_then_ids_ascending() {
        let values = [
            f32::NEG_INFINITY,
            -3.5,
            -1e-30,
            -0.0,
            0.0,
            1e-30,
            2.0,
            f32::MAX,
        ];
        let mut keys: Vec<u64> = values
            .iter()
            .enumerate()
            .map(|(id, &z)| rank_key(z, id))
            .collect();
        keys.sort_unstable();
        let ids: Vec<u32> = keys.iter().map(|&k| key_id(k)).collect();
        // -0.0 (id 3) and +0.0 (id 4) are equal logits: the lower id first.
        assert_eq!(ids, [7, 6, 5, 3, 4, 2, 1, 0]);
    }

    #[test]
    fn argmax_takes_the_lowest_id_of_equal_maxima() {
        assert_eq!(argmax(&[1.0, 3.0, -2.0, 3.0]), Ok(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -5.0]), Ok(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY]), Ok(0));
        assert_eq!(argmax(&[]), Err(SamplerError::NoLogits));
        assert!(matches!(
            argmax(&[0.0, f32::NAN]),
            Err(SamplerError::BadLogit { token: 1, .. })
        ));
    }

    #[test]
    fn parameters_are_checked() {
        for (sampling, error) in [
            (sample(0.0, None, None), SamplerError::Temperature(0.0)),
            (sample(-1.0, None, None), SamplerError::Temperature(-1.0)),
            (sample(1.0, None, Some(0.0)), SamplerError::TopP(0.0)),
            (sample(1.0, None, Some(1.5)), SamplerError::TopP(1.5)),
            (sample(1.0, Some(0), None), SamplerError::TopK),
        ] {
            assert_eq!(TokenSampler::new(1, sampling).unwrap_err(), error);
            assert!(error.is_params());
        }
        assert!(matches!(
            TokenSampler::new(1, sample(f64::NAN, None, None)),
            Err(SamplerError::Temperature(_))
        ));
        assert!(TokenSampler::new(1, sample(2.0, Some(1), Some(1.0))).is_ok());
    }

    #[test]
    fn bad_logits_are_refused() {
        let mut sampler = TokenSampler::new(1, sample(1.0, None, None)).unwrap();
        assert_eq!(
            sampler.next_token(&[0.0, f32::INFINITY]),
            Err(SamplerError::BadLogit {
                token: 1,
                value: f32::INFINITY
            })
        );
        assert!(matches!(
            sampler.next_token(&[f32::NAN]),
            Err(SamplerError::BadLogit { token: 0, .. })
        ));
        assert_eq!(sampler.next_token(&[]), Err(SamplerError::NoLogits));
        assert_eq!(
            sampler.next_token(&[f32::NEG_INFINITY; 3]),
            Err(SamplerError::AllNegInfinite)
        );
        // +inf is a fine maximum for greedy decoding.
        let mut greedy = TokenSampler::new(1, TextSampling::Greedy).unwrap();
        assert_eq!(greedy.next_token(&[0.0, f32::INFINITY]), Ok(1));
    }

    #[test]
    fn one_word_per_sampled_step() {
        // A single candidate (top_k 1) still consumes the step's word: the stream position
        // depends only on the step number.
        let logits = [0.5, 1.0, 0.25];
        let mut sampler = TokenSampler::new(3, sample(1.0, Some(1), None)).unwrap();
        for _ in 0..5 {
            assert_eq!(sampler.next_token(&logits), Ok(1));
        }
        let mut stream = UniformStream::new(3, 0);
        for _ in 0..5 {
            stream.next_word();
        }
        assert_eq!(sampler.uniforms.next_word(), stream.next_word());
    }

    #[test]
    fn cuts_keep_only_the_most_likely_tokens() {
        let logits = [0.0, 4.0, 1.0, 3.0, 2.0, -1.0];
        let tokens = draw(11, sample(2.0, Some(2), None), &logits, 400);
        assert!(tokens.iter().all(|t| [1, 3].contains(t)), "{tokens:?}");
        assert!(tokens.contains(&1) && tokens.contains(&3));
        // At T = 1 the ranked probabilities are 0.63, 0.23, 0.09, ...: the shortest prefix
        // holding 70 % of the mass is tokens 1 and 3 (0.87).
        let tokens = draw(12, sample(1.0, None, Some(0.7)), &logits, 400);
        assert!(tokens.iter().all(|t| [1, 3].contains(t)), "{tokens:?}");
        // A tiny top_p keeps only the most likely token.
        let tokens = draw(13, sample(1.0, None, Some(1e-9)), &logits, 50);
        assert!(tokens.iter().all(|&t| t == 1));
        // top-p applies to the top-k set: of tokens 1, 3, 4 (weights 1, e^-1, e^-2 → 0.67,
        // 0.24, 0.09) a 0.9 mass keeps 1 and 3 only.
        let tokens = draw(14, sample(1.0, Some(3), Some(0.9)), &logits, 400);
        assert!(tokens.iter().all(|t| [1, 3].contains(t)), "{tokens:?}");
        assert!(tokens.contains(&3));
    }

    #[test]
    fn extreme_temperatures_stay_finite() {
        // A vanishing temperature is greedy (the other weights underflow to 0, none overflows).
        let logits = [1.0, 2.0, 0.5, f32::MAX, -f32::MAX];
        let tokens = draw(8, sample(1e-300, None, None), &logits, 20);
        assert!(tokens.iter().all(|&t| t == 3), "{tokens:?}");
        // A huge one is near uniform over the finite logits.
        let tokens = draw(9, sample(1e300, None, None), &[1.0, 2.0, 0.5], 300);
        for token in 0..3 {
            assert!(tokens.contains(&token), "{tokens:?}");
        }
    }

    #[test]
    fn frequencies_follow_the_softmax() {
        let logits = [1.0, 0.0, f32::NEG_INFINITY, 2.0];
        let n = 60_000;
        let tokens = draw(5, sample(1.0, None, None), &logits, n);
        let total = 1.0 + (-1.0f64).exp() + (-2.0f64).exp();
        for (token, weight) in [(3, 1.0), (0, (-1.0f64).exp()), (1, (-2.0f64).exp())] {
            let freq = tokens.iter().filter(|&&t| t == token).count() as f64 / n as f64;
            let expected = weight / total;
            assert!(
                (freq - expected).abs() < 0.01,
                "token {token}: {freq} vs {expected}"
            );
        }
        assert!(!tokens.contains(&2), "a -inf logit was sampled");
    }

    #[test]
    fn same_seed_same_tokens_and_seeds_differ() {
        let logits: Vec<f32> = (0..50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
        let a = draw(21, sample(0.9, None, None), &logits, 64);
        assert_eq!(a, draw(21, sample(0.9, None, None), &logits, 64));
        assert_ne!(a, draw(22, sample(0.9, None, None), &logits, 64));
    }

    // The pinned vectors, also printed in docs/task-format.md §6: changing any of them changes
    // every node's sampled text, so it needs a new task-format version.

    #[test]
    fn known_uniforms() {
        for (seed, words, uniforms) in KNOWN_UNIFORMS {
            let mut stream = UniformStream::new(seed, 0);
            let got: Vec<u64> = (0..4).map(|_| stream.next_word()).collect();
            assert_eq!(got, words, "seed {seed}");
            let mut stream = UniformStream::new(seed, 0);
            let got: Vec<f64> = (0..4).map(|_| stream.next_uniform()).collect();
            assert_eq!(got, uniforms, "seed {seed}");
        }
    }

    #[test]
    fn known_token_sequences() {
        for (sampling, tokens) in known_sequences() {
            assert_eq!(
                draw(VECTOR_SEED, sampling, &VECTOR_LOGITS, tokens.len()),
                tokens,
                "{sampling:?}"
            );
        }
    }

    const KNOWN_UNIFORMS: [(u64, [u64; 4], [f64; 4]); 2] = [
        (
            0,
            [
                10393729187455219830,
                2935650227004792128,
                1940362735889535677,
                14343251830567286440,
            ],
            [
                0.5634451882632473,
                0.15914191768880792,
                0.10518727468306754,
                0.7775492397603869,
            ],
        ),
        (
            1234,
            [
                6574029997942034779,
                14074667263046312130,
                10596731137425622625,
                13334297949552484547,
            ],
            [
                0.3563788802876815,
                0.762989241180271,
                0.5744499460220824,
                0.7228537402736905,
            ],
        ),
    ];

    const VECTOR_SEED: u64 = 42;
    const VECTOR_LOGITS: [f32; 8] = [1.5, -0.25, 3.0, 0.0, 2.75, f32::NEG_INFINITY, 3.0, -1.0];

    fn known_sequences() -> Vec<(TextSampling, Vec<u32>)> {
        vec![
            (TextSampling::Greedy, vec![2; 16]),
            (
                sample(1.0, None, None),
                vec![6, 4, 4, 2, 4, 6, 2, 4, 3, 6, 6, 6, 6, 6, 3, 4],
            ),
            (
                sample(0.7, Some(3), None),
                vec![6, 6, 6, 2, 4, 6, 2, 4, 4, 2, 6, 6, 6, 6, 4, 4],
            ),
            (
                sample(1.3, None, Some(0.8)),
                vec![6, 6, 6, 2, 4, 6, 2, 4, 4, 6, 6, 6, 6, 6, 4, 4],
            ),
            (
                sample(2.0, Some(6), Some(0.95)),
                vec![6, 4, 4, 2, 0, 6, 2, 4, 1, 6, 4, 6, 4, 6, 1, 0],
            ),
        ]
    }
}
