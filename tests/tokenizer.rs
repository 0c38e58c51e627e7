//! The tokenizer, the `llama_3` prompt and `tokenizer_speech_token` against transformers'
//! `AutoTokenizer` and a restatement of the reference functions (fixtures:
//! tests/reference/ref_tokenizer.py). Everything must be identical: ids, strings.
//!
//! - `llama3_1`: the real Llama-3 vocabulary (128256 tokens, BOS post-processor).
//! - `tiny`: the 512-token byte-level BPE of the tiny test model.

mod common;

use std::path::PathBuf;

use common::fixture;
use omni_core::model::llama::prompt::{
    tokenizer_speech_token, Conversation, PromptIds, Role, Segment, DEFAULT_SPEECH_TOKEN,
    DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_MESSAGE, SPEECH_TOKEN_INDEX,
};
use omni_core::model::llama::tokenizer::Tokenizer;
use omni_core::Error;
use omni_core::Streaming;
use serde_json::Value;

fn expected(name: &str) -> Value {
    let path = fixture(&format!("tokenizer/{name}_expected.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> Tokenizer {
    Tokenizer::from_file(fixture(&format!("tokenizer/{name}/tokenizer.json")))
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn i64s(v: &Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("id"))
        .collect()
}

fn s(v: &Value) -> &str {
    v.as_str().expect("string")
}

fn conversation(case: &Value) -> Conversation {
    let mut c = Conversation::with_system(s(&case["system"]));
    for m in case["messages"].as_array().expect("messages") {
        let role = match s(&m[0]) {
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => panic!("role {other}"),
        };
        c.push(role, m[1].as_str().map(str::to_string));
    }
    c
}

/// Pushes `ids` one at a time; returns the deltas (the last one from `finish`).
fn stream(tok: &Tokenizer, ids: &[u32], skip: bool) -> Vec<String> {
    let mut st = tok.text_stream(skip);
    let mut out: Vec<String> = ids.iter().map(|&id| st.push(id).expect("push")).collect();
    out.push(st.flush().expect("flush"));
    out
}

/// Every check that runs on both tokenizers.
fn check_against_reference(name: &str) {
    let exp = expected(name);
    let tok = load(name);
    assert_eq!(
        tok.vocab_size() as u64,
        exp["vocab_size"].as_u64().unwrap(),
        "{name} vocab"
    );
    assert_eq!(
        tok.bos_token_id().map(u64::from),
        exp["bos_token_id"].as_u64(),
        "{name} bos"
    );
    assert_eq!(
        tok.eos_token_id().map(u64::from),
        exp["eos_token_id"].as_u64(),
        "{name} eos"
    );
    assert_eq!(
        tok.clean_up_tokenization_spaces(),
        exp["clean_up_tokenization_spaces"].as_bool().unwrap()
    );
    for (token, id) in exp["special_tokens"].as_object().unwrap() {
        assert_eq!(
            tok.token_id(token).map(u64::from),
            id.as_u64(),
            "{name} {token}"
        );
        assert!(
            tok.is_special(id.as_u64().unwrap() as u32),
            "{name} {token} is special"
        );
    }

    // Conversations: the rendered text and the ids.
    for case in exp["prompts"].as_array().unwrap() {
        let label = format!("{name} prompt {}", s(&case["name"]));
        let conv = conversation(case);
        assert_eq!(conv.render(), s(&case["prompt"]), "{label}: text");
        let ids = conv
            .tokenize(&tok)
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(ids.ids(), i64s(&case["ids"]).as_slice(), "{label}: ids");
        assert_eq!(
            tokenizer_speech_token(&tok, s(&case["prompt"])).unwrap(),
            i64s(&case["ids"]),
            "{label}"
        );
    }
    // Raw prompt strings (edge cases of the split and of the BOS offset).
    for case in exp["raw_prompts"].as_array().unwrap() {
        let prompt = s(&case["prompt"]);
        let ids = tokenizer_speech_token(&tok, prompt).unwrap();
        assert_eq!(ids, i64s(&case["ids"]), "{name} raw prompt {prompt:?}");
    }

    // Plain encodes and decodes, and the stream over the same ids.
    for case in exp["texts"].as_array().unwrap() {
        let text = s(&case["text"]);
        let ids = u32s(&case["ids"]);
        assert_eq!(
            tok.encode(text, true).unwrap(),
            ids,
            "{name} encode {text:?}"
        );
        assert_eq!(
            tok.encode(text, false).unwrap(),
            u32s(&case["ids_no_special"]),
            "{name} encode (no special) {text:?}"
        );
        assert_eq!(
            tok.decode(&ids, true).unwrap(),
            s(&case["decode_skip"]),
            "{name} decode {text:?}"
        );
        assert_eq!(
            tok.decode(&ids, false).unwrap(),
            s(&case["decode_keep"]),
            "{name} decode keep {text:?}"
        );
        assert_eq!(
            tok.decode_raw(&ids, true).unwrap(),
            s(&case["decode_skip_no_cleanup"]),
            "{name} decode raw {text:?}"
        );

        let deltas = stream(&tok, &ids, true);
        assert_eq!(
            deltas.concat(),
            s(&case["decode_skip"]),
            "{name} stream {text:?}: {deltas:?}"
        );
        assert!(
            deltas.iter().all(|d| !d.contains('\u{FFFD}')),
            "{name} stream {text:?} cut a character: {deltas:?}"
        );
        let deltas = stream(&tok, &ids, false);
        assert_eq!(
            deltas.concat(),
            s(&case["decode_keep"]),
            "{name} stream keep {text:?}: {deltas:?}"
        );
    }
    for case in exp["decodes"].as_array().unwrap() {
        let ids = u32s(&case["ids"]);
        assert_eq!(
            tok.decode(&ids, true).unwrap(),
            s(&case["decode_skip"]),
            "{name} decode {ids:?}"
        );
        assert_eq!(
            tok.decode(&ids, false).unwrap(),
            s(&case["decode_keep"]),
            "{name} decode keep {ids:?}"
        );
        assert_eq!(
            stream(&tok, &ids, true).concat(),
            s(&case["decode_skip"]),
            "{name} stream {ids:?}"
        );
        assert_eq!(
            stream(&tok, &ids, false).concat(),
            s(&case["decode_keep"]),
            "{name} stream keep {ids:?}"
        );
    }
}

#[test]
fn llama3_1_matches_reference() {
    check_against_reference("llama3_1");
}

#[test]
fn tiny_matches_reference() {
    check_against_reference("tiny");
}

#[test]
fn llama3_1_one_turn_prompt_has_double_bos_and_one_placeholder() {
    let tok = load("llama3_1");
    let exp = expected("llama3_1");
    let case = &exp["prompts"][0];
    assert_eq!(s(&case["name"]), "default_one_turn");

    let conv = Conversation::single_turn();
    assert_eq!(conv.system, DEFAULT_SYSTEM_PROMPT);
    assert_eq!(
        conv.messages[0].content.as_deref(),
        Some(DEFAULT_USER_MESSAGE)
    );
    assert_eq!(conv.render(), s(&case["prompt"]));
    let ids = conv.tokenize(&tok).unwrap();
    assert_eq!(ids.ids(), i64s(&case["ids"]).as_slice());

    let bos = tok.token_id("<|begin_of_text|>").unwrap();
    let start = tok.token_id("<|start_header_id|>").unwrap();
    let end = tok.token_id("<|end_header_id|>").unwrap();
    let eot = tok.token_id("<|eot_id|>").unwrap();
    assert_eq!((bos, start, end, eot), (128000, 128006, 128007, 128009));
    assert_eq!(&ids.ids()[..3], &[128000, 128000, 128006]);
    assert_eq!(ids.speech_count(), 1);
    let p = ids.speech_positions()[0];
    // ...user<|end_header_id|> "\n\n" | <speech> | "\n" "Please"...
    assert_eq!(
        &ids.ids()[p - 2..p + 2],
        &[128007, 271, SPEECH_TOKEN_INDEX, 198]
    );
    assert_eq!(tok.decode(&[5618], false).unwrap(), "Please");
    assert_eq!(ids.ids()[p + 2], 5618);
    // Ends with the open assistant header.
    let n = ids.len();
    assert_eq!(&ids.ids()[n - 4..], &[128006, 78191, 128007, 271]);
    assert_eq!(tok.decode(&[78191], false).unwrap(), "assistant");

    // The splice view.
    let chunks = ids.text_chunks();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0].len(), p);
    assert_eq!(chunks[1].len(), n - p - 1);
    match &ids.segments()[..] {
        [Segment::Text(a), Segment::Speech, Segment::Text(b)] => {
            assert_eq!(a, &chunks[0]);
            assert_eq!(b, &chunks[1]);
        }
        other => panic!("segments {other:?}"),
    }
    assert_eq!(ids.spliced_len(&[300]).unwrap(), n - 1 + 300);
    assert!(matches!(ids.spliced_len(&[]), Err(Error::InvalidInput(_))));
    println!(
        "llama3_1 one-turn prompt: {n} ids, first 12 {:?}",
        &ids.ids()[..12]
    );
}

#[test]
fn multi_turn_has_one_placeholder_per_speech_turn() {
    let tok = load("llama3_1");
    let mut conv = Conversation::llama_3();
    conv.push_user(DEFAULT_USER_MESSAGE)
        .push_assistant("Paris.")
        .push_user(format!("{DEFAULT_SPEECH_TOKEN}\nAnd Germany?"))
        .open_assistant();
    let ids = conv.tokenize(&tok).unwrap();
    assert_eq!(ids.speech_count(), 2);
    assert_eq!(
        ids.segments()
            .iter()
            .filter(|s| **s == Segment::Speech)
            .count(),
        2
    );
    // Only the first chunk keeps its BOS (twice: post-processor + template text).
    let bos = i64::from(tok.bos_token_id().unwrap());
    assert_eq!(ids.ids().iter().filter(|&&id| id == bos).count(), 2);
}

#[test]
fn tiny_without_bos_post_processor_matches_reference() {
    // A copy of the tiny tokenizer whose post-processor adds no BOS: the literal
    // `<|begin_of_text|>` still makes the reference drop the first id of every chunk.
    let exp = expected("tiny");
    let path = fixture("tokenizer/tiny/tokenizer.json");
    let mut json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    json["post_processor"] = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true
    });
    let config = std::fs::read(fixture("tokenizer/tiny/tokenizer_config.json")).unwrap();
    let tok = Tokenizer::from_json_bytes(&serde_json::to_vec(&json).unwrap(), Some(&config), &path)
        .unwrap();
    let cases = exp["no_bos_post_processor"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let prompt = s(&case["prompt"]);
        assert_eq!(
            tokenizer_speech_token(&tok, prompt).unwrap(),
            i64s(&case["ids"]),
            "{prompt:?}"
        );
    }
}

#[test]
fn tiny_layout_for_the_tiny_model() {
    let tok = load("tiny");
    let exp = expected("tiny");
    assert_eq!(tok.vocab_size(), 512);
    for (token, id) in exp["specials_layout"].as_object().unwrap() {
        assert_eq!(tok.token_id(token).map(u64::from), id.as_u64(), "{token}");
    }
    assert_eq!(tok.bos_token_id(), Some(480));
    assert_eq!(tok.eos_token_id(), Some(489));
    assert_eq!(tok.encode("hi", true).unwrap()[0], 480);
}

#[test]
fn stream_holds_back_a_character_split_over_tokens() {
    let tok = load("llama3_1");
    for text in [
        "I love 🦀 and 👍🏽!",
        "Ţară şi ŀ, Ǆemal",
        "今天天气很好，齉龘。鬱陶しい",
    ] {
        let ids = tok.encode(text, false).unwrap();
        let pieces: Vec<String> = ids
            .iter()
            .map(|&id| tok.decode(&[id], false).unwrap())
            .collect();
        assert!(
            pieces.iter().any(|p| p.contains('\u{FFFD}')),
            "{text:?}: expected a token that cuts a character, got {pieces:?}"
        );
        let mut st = tok.text_stream(true);
        let mut out = String::new();
        let mut held = 0;
        for &id in &ids {
            let d = st.push(id).unwrap();
            if d.is_empty() {
                held += 1;
            }
            assert!(!d.contains('\u{FFFD}'), "{text:?}: delta {d:?}");
            out.push_str(&d);
            // What was given out so far is a prefix of the text.
            assert!(text.starts_with(&out), "{text:?}: {out:?}");
        }
        assert!(held > 0, "{text:?}: nothing was held back");
        out.push_str(&st.flush().unwrap());
        assert_eq!(out, text);
    }

    // The crab emoji: 3 byte-level tokens; nothing comes out until the last one.
    let crab = tok.encode(" 🦀", false).unwrap();
    assert_eq!(crab.len(), 3, "{crab:?}");
    let mut st = tok.text_stream(true);
    assert_eq!(st.push(crab[0]).unwrap(), "");
    assert_eq!(st.push(crab[1]).unwrap(), "");
    assert_eq!(st.push(crab[2]).unwrap(), " 🦀");
    assert_eq!(st.flush().unwrap(), "");

    // With clean-up on, a trailing space waits for the next token (it may be " ." → ".").
    let ids = tok.encode("Hi . Yes", false).unwrap();
    let deltas = stream(&tok, &ids, true);
    assert_eq!(deltas.concat(), "Hi. Yes");
    assert_eq!(deltas.concat(), tok.decode(&ids, true).unwrap());
}

#[test]
fn stream_skips_special_tokens_and_cleans_up_like_decode() {
    let tok = load("llama3_1");
    let text = "Hello . I don't know , do you ? Yes !";
    let mut ids = tok.encode(text, true).unwrap();
    ids.push(tok.token_id("<|eot_id|>").unwrap());
    let deltas = stream(&tok, &ids, true);
    assert_eq!(deltas.concat(), tok.decode(&ids, true).unwrap());
    assert_eq!(deltas.concat(), "Hello. I don't know, do you? Yes!");
    // The eot pushes nothing.
    assert_eq!(deltas[ids.len() - 1], "");
    // Without clean-up the stream gives the raw text.
    let raw = tok.clone().with_clean_up_tokenization_spaces(false);
    assert_eq!(stream(&raw, &ids, true).concat(), text);
    // reset() forgets what was pushed.
    let mut st = tok.text_stream(true);
    st.push(ids[1]).unwrap();
    st.reset();
    assert_eq!(st.flush().unwrap(), "");
}

fn scratch_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("omni-tokenizer-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_or_garbage_tokenizer_is_an_error_naming_the_file() {
    let d = scratch_dir("errors");
    let missing = d.join("nope/tokenizer.json");
    match Tokenizer::from_file(&missing) {
        Err(e @ Error::MissingFile { .. }) => {
            assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}")
        }
        other => panic!("expected MissingFile, got {other:?}"),
    }

    let garbage = d.join("tokenizer.json");
    std::fs::write(&garbage, b"{ this is not a tokenizer").unwrap();
    match Tokenizer::from_file(&garbage) {
        Err(e @ Error::Config { .. }) => {
            assert!(e.to_string().contains(&*garbage.to_string_lossy()), "{e}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
    // A directory finds its tokenizer.json.
    assert!(matches!(
        Tokenizer::from_file(&d),
        Err(Error::Config { .. })
    ));

    // A good tokenizer.json with a broken tokenizer_config.json: the error names the config.
    std::fs::copy(fixture("tokenizer/tiny/tokenizer.json"), &garbage).unwrap();
    let config = d.join("tokenizer_config.json");
    std::fs::write(&config, b"[1, 2").unwrap();
    match Tokenizer::from_file(&garbage) {
        Err(e @ Error::Config { .. }) => {
            assert!(e.to_string().contains("tokenizer_config.json"), "{e}")
        }
        other => panic!("expected Config, got {other:?}"),
    }
    // A config naming a BOS the vocabulary lacks.
    std::fs::write(&config, br#"{"bos_token": "<s>"}"#).unwrap();
    assert!(matches!(
        Tokenizer::from_file(&garbage),
        Err(Error::Config { .. })
    ));
    // No config: the Llama-3 defaults.
    std::fs::remove_file(&config).unwrap();
    let tok = Tokenizer::from_file(&garbage).unwrap();
    assert_eq!(
        (tok.bos_token_id(), tok.eos_token_id()),
        (Some(480), Some(489))
    );
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn prompt_ids_reject_foreign_negative_ids() {
    assert!(matches!(
        PromptIds::new(vec![1, -100]),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        PromptIds::new(vec![1, SPEECH_TOKEN_INDEX])
            .unwrap()
            .speech_count(),
        1
    );
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn check<T: Send + Sync + Clone>() {}
    check::<Tokenizer>();
    check::<omni_core::model::llama::tokenizer::TextStream>();
}
