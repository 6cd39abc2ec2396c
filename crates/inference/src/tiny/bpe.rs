//! Small real BPE tokenizers for the tiny models: merges learned deterministically from a
//! built-in corpus, over GPT-2's byte-to-unicode alphabet (what CLIP and Llama 3 use).

use std::collections::BTreeMap;

/// Text the merges are learned from: prompt-like English.
const CORPUS: &str = "a photo of a cat sitting on a red chair, highly detailed, digital art. \
a painting of a mountain landscape at sunset with a river and trees in the style of an old master. \
an astronaut riding a horse on the moon, cinematic lighting, sharp focus, trending on artstation. \
the quick brown fox jumps over the lazy dog. hello world, this is a test of the tokenizer. \
portrait of a woman with blue eyes and long hair, oil on canvas, soft light, 4k, 8k, 35mm photograph. \
a cozy cabin in the snowy forest at night, warm light in the windows, stars in the sky. \
you are a helpful assistant. answer the question in one sentence. what is the capital of france? \
the capital of france is paris. tell me a story about a robot who learns to paint flowers. \
once upon a time there was a small robot that wanted to see the sea and the sun and the stars.";

/// GPT-2's reversible byte → printable character map, in byte order.
pub(crate) fn bytes_to_unicode() -> Vec<char> {
    let printable =
        |b: u32| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut extra = 0;
    (0u32..256)
        .map(|b| {
            if printable(b) {
                char::from_u32(b).unwrap_or('?')
            } else {
                extra += 1;
                char::from_u32(255 + extra).unwrap_or('?')
            }
        })
        .collect()
}

/// The 256 byte symbols in CLIP/GPT-2 vocabulary order (printable bytes first).
pub(crate) fn byte_alphabet() -> Vec<String> {
    let map = bytes_to_unicode();
    let printable =
        |b: usize| (33..=126).contains(&b) || (161..=172).contains(&b) || (174..=255).contains(&b);
    let mut order: Vec<usize> = (0..256).filter(|&b| printable(b)).collect();
    order.extend((0..256).filter(|&b| !printable(b)));
    order.into_iter().map(|b| map[b].to_string()).collect()
}

/// Learns up to `count` merges from `words` (each a symbol sequence), most frequent pair
/// first, ties broken by the smaller pair, stopping when no pair occurs twice.
fn learn_merges(words: &[Vec<String>], count: usize) -> Vec<(String, String)> {
    let mut frequencies: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for word in words {
        *frequencies.entry(word.clone()).or_default() += 1;
    }
    let mut words: Vec<(Vec<String>, usize)> = frequencies.into_iter().collect();
    let mut merges = Vec::new();
    while merges.len() < count {
        let mut pairs: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (symbols, freq) in &words {
            for pair in symbols.windows(2) {
                *pairs.entry((pair[0].clone(), pair[1].clone())).or_default() += freq;
            }
        }
        // BTreeMap iterates pairs in order, so `max_by_key` over (count, Reverse) is stable.
        let Some((best, freq)) = pairs
            .into_iter()
            .max_by(|(a, ca), (b, cb)| ca.cmp(cb).then_with(|| b.cmp(a)))
        else {
            break;
        };
        if freq < 2 {
            break;
        }
        let merged = format!("{}{}", best.0, best.1);
        for (symbols, _) in &mut words {
            let mut out = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && symbols[i] == best.0 && symbols[i + 1] == best.1 {
                    out.push(merged.clone());
                    i += 2;
                } else {
                    out.push(symbols[i].clone());
                    i += 1;
                }
            }
            *symbols = out;
        }
        merges.push(best);
    }
    merges
}

fn byte_symbols(text: &str) -> Vec<String> {
    let map = bytes_to_unicode();
    text.bytes().map(|b| map[b as usize].to_string()).collect()
}

/// Splits like CLIP's regex does for this ASCII corpus: letter runs, single digits, and runs
/// of other non-space characters.
fn clip_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut kind = 0;
    for c in text.to_lowercase().chars() {
        let k = if c.is_whitespace() {
            0
        } else if c.is_alphabetic() {
            1
        } else if c.is_numeric() {
            2
        } else {
            3
        };
        if (k != kind || k == 2) && !current.is_empty() {
            words.push(std::mem::take(&mut current));
        }
        if k != 0 {
            current.push(c);
        }
        kind = k;
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Appends the entries not yet in `vocab` (two merges can produce the same symbol).
fn push_unique(vocab: &mut Vec<String>, entries: impl IntoIterator<Item = String>) {
    let mut seen: std::collections::BTreeSet<String> = vocab.iter().cloned().collect();
    for entry in entries {
        if seen.insert(entry.clone()) {
            vocab.push(entry);
        }
    }
}

/// A CLIP tokenizer: `vocab.json` entries in CLIP's order and `merges.txt` lines.
pub(crate) struct ClipBpe {
    pub(crate) vocab: Vec<String>,
    pub(crate) merges: Vec<(String, String)>,
}

pub(crate) const CLIP_BOS: &str = "<|startoftext|>";
pub(crate) const CLIP_EOS: &str = "<|endoftext|>";

/// CLIP's layout: 256 bytes, 256 bytes + `</w>`, one entry per merge, then the two specials.
pub(crate) fn clip_bpe(merges: usize) -> ClipBpe {
    let words: Vec<Vec<String>> = clip_words(CORPUS)
        .iter()
        .map(|word| {
            let mut symbols = byte_symbols(word);
            if let Some(last) = symbols.last_mut() {
                last.push_str("</w>");
            }
            symbols
        })
        .collect();
    let merges = learn_merges(&words, merges);
    let alphabet = byte_alphabet();
    let mut vocab = alphabet.clone();
    vocab.extend(alphabet.iter().map(|s| format!("{s}</w>")));
    push_unique(&mut vocab, merges.iter().map(|(a, b)| format!("{a}{b}")));
    vocab.push(CLIP_BOS.to_owned());
    vocab.push(CLIP_EOS.to_owned());
    ClipBpe { vocab, merges }
}

/// A GPT-2 style byte-level BPE (no end-of-word suffix, spaces as `Ġ` prefixes).
pub(crate) fn byte_level_bpe(merges: usize) -> (Vec<String>, Vec<(String, String)>) {
    let mut words = Vec::new();
    for (i, word) in CORPUS.split(' ').enumerate() {
        let text = if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        };
        words.push(byte_symbols(&text));
    }
    let merges = learn_merges(&words, merges);
    let mut vocab = byte_alphabet();
    push_unique(&mut vocab, merges.iter().map(|(a, b)| format!("{a}{b}")));
    (vocab, merges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_a_bijection() {
        let alphabet = byte_alphabet();
        assert_eq!(alphabet.len(), 256);
        let unique: std::collections::BTreeSet<_> = alphabet.iter().collect();
        assert_eq!(unique.len(), 256);
        assert_eq!(alphabet[0], "!");
        assert_eq!(bytes_to_unicode()[b' ' as usize], 'Ġ');
    }

    #[test]
    fn merges_are_deterministic_and_learned() {
        let a = clip_bpe(100);
        let b = clip_bpe(100);
        assert_eq!(a.merges, b.merges);
        assert!(a.merges.len() > 50, "{} merges", a.merges.len());
        assert!(
            a.merges
                .iter()
                .any(|(x, y)| format!("{x}{y}") == "the</w>" || x == "th")
        );
        assert!(a.vocab.len() <= 512 + a.merges.len() + 2);
        assert_eq!(a.vocab.last().map(String::as_str), Some(CLIP_EOS));
    }
}
