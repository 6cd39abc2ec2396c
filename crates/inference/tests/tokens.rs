//! Pins the bytes a dependency upgrade could silently move: the token ids of the tiny models'
//! tokenizers (llama BPE, CLIP), the tokenizer files `tokenizers` writes (through the model
//! digest), and greedy decoding. The expected values were taken with tokenizers 0.22 and
//! candle's `LogitsProcessor` before the move to tokenizers 0.23 and the project's own sampler,
//! and hold unchanged after it.

mod common;

use candle_core::Device;
use common::{text_params, tiny};
use verinfer_inference::{
    ChatMessage, ChatRole, Precision, PromptEncoder, TextPipeline, TextPrompt, TextSampling,
    sd::tokenizer::ClipTokenizer,
};

const PROMPTS: [&str; 5] = [
    "a photo of a cat sitting on a red chair",
    "Once upon a time",
    "naïve café ☕ — 東京 123 !!",
    "  several   spaces\n\nand\tnewlines  ",
    "<|user|> hello </s> world",
];

fn llama() -> TextPipeline {
    TextPipeline::load(&tiny().llama, &Device::Cpu, Precision::F32).expect("load tiny-llama")
}

#[test]
fn llama_prompt_ids_are_pinned() {
    let pipeline = llama();
    let mut got: Vec<Vec<u32>> = PROMPTS
        .iter()
        .map(|p| {
            pipeline
                .prompt_ids(&TextPrompt::Prompt((*p).to_owned()))
                .expect("tokenize")
        })
        .collect();
    got.push(
        pipeline
            .prompt_ids(&TextPrompt::Chat(vec![
                ChatMessage {
                    role: ChatRole::System,
                    content: "Be brief.".to_owned(),
                },
                ChatMessage {
                    role: ChatRole::User,
                    content: "Tell me about café robots.".to_owned(),
                },
            ]))
            .expect("tokenize chat"),
    );
    assert_eq!(got, expected_llama_ids(), "{got:?}");
}

#[test]
fn clip_ids_are_pinned() {
    for (dir, expected) in [
        (tiny().sd.join("tokenizer"), expected_clip_ids()),
        (tiny().sdxl.join("tokenizer_2"), expected_clip2_ids()),
    ] {
        let tokenizer = ClipTokenizer::load(&dir).expect("load CLIP tokenizer");
        let got: Vec<Vec<u32>> = PROMPTS
            .iter()
            .map(|p| {
                let tokens = tokenizer.encode(p, 16).expect("tokenize");
                tokens.ids
            })
            .collect();
        assert_eq!(got, expected, "{}: {got:?}", dir.display());
    }
}

#[test]
fn tiny_model_files_are_pinned() {
    // tiny-llama's tokenizer.json is written by the tokenizers crate's serialiser.
    let got = verinfer_task::model_digest(&tiny().llama)
        .expect("digest")
        .to_string();
    assert_eq!(got, LLAMA_DIGEST);
}

#[test]
fn greedy_text_is_pinned() {
    let generation = llama()
        .generate(&text_params(1, TextSampling::Greedy), &mut |_, _| {})
        .expect("generate");
    assert_eq!(
        (generation.token_ids.clone(), generation.text.clone()),
        expected_greedy(),
        "{generation:?}"
    );
}

/// A gateway counts prompt tokens with a [`PromptEncoder`] (no weights): it must give exactly
/// the ids the node's pipeline computes from, for raw prompts and chats, however it is built.
#[test]
fn the_prompt_encoder_gives_the_pipelines_ids_without_weights() {
    let pipeline = llama();
    let encoder = PromptEncoder::load(&tiny().llama).expect("load the prompt encoder");
    assert_eq!(encoder.dir(), pipeline.dir());
    let task_chat = verinfer_task::TextInput::Messages(vec![
        verinfer_task::ChatMessage {
            role: verinfer_task::Role::System,
            content: "Be brief.".to_owned(),
        },
        verinfer_task::ChatMessage {
            role: verinfer_task::Role::User,
            content: "Tell me about café robots.".to_owned(),
        },
    ]);
    let mut inputs: Vec<TextPrompt> = PROMPTS
        .iter()
        .map(|p| TextPrompt::Prompt((*p).to_owned()))
        .collect();
    inputs.push(TextPrompt::from(&task_chat));
    inputs.push(TextPrompt::from(&verinfer_task::TextInput::Prompt(
        "Once upon a time".to_owned(),
    )));
    inputs.push(text_params(1, TextSampling::Greedy).input);
    for input in &inputs {
        let ids = encoder.prompt_ids(input).expect("encode");
        assert!(!ids.is_empty(), "{input:?}");
        assert_eq!(
            ids,
            pipeline.prompt_ids(input).expect("tokenize"),
            "{input:?}"
        );
    }
    // The task's chat converts to the pinned chat (the last of the pinned ids).
    assert_eq!(
        Some(&encoder.prompt_ids(&inputs[PROMPTS.len()]).unwrap()),
        expected_llama_ids().last()
    );

    // Only the two tokenizer files are read: the weights and config.json may be missing ...
    let dir = tempfile::tempdir().expect("tempdir");
    for file in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(tiny().llama.join(file), dir.path().join(file)).expect("copy");
    }
    let bare = PromptEncoder::load(dir.path()).expect("load without weights");
    for input in &inputs {
        assert_eq!(
            bare.prompt_ids(input).unwrap(),
            encoder.prompt_ids(input).unwrap()
        );
    }
    // ... but the tokenizer may not.
    std::fs::remove_file(dir.path().join("tokenizer.json")).expect("remove");
    let error = PromptEncoder::load(dir.path()).unwrap_err().to_string();
    assert!(error.contains("tokenizer.json"), "{error}");
}

fn expected_llama_ids() -> Vec<Vec<u32>> {
    vec![
        vec![
            355, 64, 346, 268, 256, 265, 308, 261, 286, 83, 280, 277, 256, 220, 274, 67, 265, 320,
        ],
        vec![355, 46, 77, 284, 220, 84, 79, 273, 256, 257, 72, 76, 68],
        vec![
            355, 77, 64, 127, 107, 85, 68, 265, 64, 69, 127, 102, 220, 158, 246, 243, 220, 158,
            222, 242, 220, 162, 251, 109, 160, 118, 105, 220, 16, 17, 18, 220, 0, 0,
        ],
        vec![
            355, 220, 349, 335, 64, 75, 220, 220, 261, 79, 64, 284, 82, 198, 198, 269, 67, 197, 77,
            68, 86, 75, 259, 315, 220, 220,
        ],
        vec![
            355, 27, 91, 84, 82, 270, 91, 29, 338, 297, 78, 220, 27, 14, 82, 29, 263, 298, 75, 67,
        ],
        vec![
            355, 357, 82, 88, 281, 68, 76, 358, 198, 198, 33, 68, 337, 81, 72, 68, 69, 13, 359,
            357, 84, 82, 270, 358, 198, 198, 51, 68, 297, 289, 68, 256, 293, 334, 265, 64, 69, 127,
            102, 348, 82, 13, 359, 357, 64, 82, 82, 272, 264, 77, 83, 358, 198, 198,
        ],
    ]
}

fn expected_clip_ids() -> Vec<Vec<u32>> {
    vec![
        vec![
            587, 320, 575, 547, 520, 320, 66, 523, 82, 522, 546, 518, 320, 81, 540, 588,
        ],
        vec![
            587, 535, 532, 84, 79, 518, 320, 545, 571, 588, 588, 588, 588, 588, 588, 588,
        ],
        vec![
            587, 77, 64, 127, 107, 85, 324, 66, 64, 69, 127, 358, 158, 246, 499, 588,
        ],
        vec![
            587, 544, 85, 558, 537, 82, 79, 64, 66, 560, 531, 77, 68, 86, 75, 588,
        ],
        vec![
            587, 27, 347, 84, 82, 524, 91, 285, 566, 75, 334, 27, 270, 338, 285, 588,
        ],
    ]
}

fn expected_clip2_ids() -> Vec<Vec<u32>> {
    let mut ids = expected_clip_ids();
    // tokenizer_2 pads with id 0 (`!`), like SDXL's second tokenizer.
    ids[1] = vec![
        587, 535, 532, 84, 79, 518, 320, 545, 571, 588, 0, 0, 0, 0, 0, 0,
    ];
    ids
}

const LLAMA_DIGEST: &str =
    "sha256:66fc892e1ee52fea76a8e304dc1824f552b4ea7b1a3b5eeea86bf36686ed6296";

fn expected_greedy() -> (Vec<u32>, String) {
    (
        vec![
            203, 20, 243, 298, 32, 153, 340, 239, 376, 276, 376, 70, 353, 286, 8, 263, 16, 124, 323,
            22, 261, 231, 205, 162, 285, 79, 34, 103, 76, 250, 33, 272,
        ],
        "\u{f}5\u{fffd}orA\u{fffd} art\u{fffd} pg treit) w1\u{fffd}hoto7 s\u{fffd}\u{11}\u{fffd}hopC\u{fffd}m\u{fffd}Bis"
            .to_owned(),
    )
}
