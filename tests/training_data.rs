//! Training manifests (omni's JSONL, InstructS2S-200K's JSON): every bad-entry
//! kind skipped with its line and reason or, strict, an error naming file and
//! line; tokenization as `preprocess_llama_3`; length buckets in a seeded order;
//! questions at any sample rate through the frozen encoder.
//!
//! Build: `cargo test --release --features train --test training_data`.

mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use omni_core::model::llama::prompt::{tokenizer_speech_token, Conversation};
use omni_core::train::{
    read_manifest, Dataset, ManifestFormat, ManifestOptions, Problem, TrainModel, IGNORE_INDEX,
};
use omni_core::{ErrorKind, OmniOptions};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("omni-train-data-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("wavs")).unwrap();
    for q in ["q1", "q2", "q3"] {
        std::fs::copy(
            fixture(&format!("train_speech/{q}.wav")),
            d.join(format!("wavs/{q}.wav")),
        )
        .unwrap();
    }
    d
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const OPTS: ManifestOptions = ManifestOptions {
    unit_vocab_size: 1000,
    require_units: true,
    strict: false,
};

#[test]
fn jsonl_reads_good_lines_and_skips_each_bad_kind_with_its_line() {
    let d = tempdir("jsonl");
    let lines = [
        r#"{"speech": "wavs/q1.wav", "answer": " Four. ", "units": [1, 2, 999]}"#,
        r#"{"speech": "wavs/q2.wav", "answer": "Red.", "units": "5 6 7", "instruction_text": "<speech>\nAnswer briefly."}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "Yes.", "units": [3, 4],"#, // bad JSON
        r#"{"answer": "No speech.", "units": [1]}"#,
        r#"{"speech": "wavs/nope.wav", "answer": "Missing file.", "units": [1]}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "   ", "units": [1]}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "Too big.", "units": [1, 1000]}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "Bad units.", "units": "1 x 2"}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "No units."}"#,
        r#"{"speech": "wavs/q3.wav", "answer": "No placeholder.", "units": [1], "instruction_text": "Answer."}"#,
        "",
        r#"{"speech": "wavs/q3.wav", "answer": "Yes.", "units": [3, 4]}"#,
    ];
    let path = write(&d, "train.jsonl", &lines.join("\n"));
    let m = read_manifest(&path, &OPTS).unwrap();
    assert_eq!(m.format, ManifestFormat::Jsonl);
    let got: Vec<(usize, &str, Vec<u32>)> = m
        .records
        .iter()
        .map(|r| (r.line, r.answer.as_str(), r.units.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "Four.", vec![1, 2, 999]),
            (2, "Red.", vec![5, 6, 7]),
            (12, "Yes.", vec![3, 4]),
        ]
    );
    assert_eq!(m.records[0].speech, d.join("wavs/q1.wav"));
    assert_eq!(
        m.records[1].instruction.as_deref(),
        Some("<speech>\nAnswer briefly.")
    );
    let skipped: Vec<(usize, &Problem)> = m.skipped.iter().map(|s| (s.line, &s.problem)).collect();
    assert_eq!(skipped.len(), 8, "{skipped:?}");
    assert!(matches!(skipped[0], (3, Problem::BadJson(_))));
    assert_eq!(skipped[1], (4, &Problem::MissingField("speech")));
    assert_eq!(
        skipped[2],
        (5, &Problem::MissingSpeech(d.join("wavs/nope.wav")))
    );
    assert_eq!(skipped[3], (6, &Problem::EmptyAnswer));
    assert_eq!(
        skipped[4],
        (
            7,
            &Problem::UnitOutOfRange {
                unit: 1000,
                unit_vocab_size: 1000
            }
        )
    );
    assert!(matches!(skipped[5], (8, Problem::BadUnits(_))));
    assert_eq!(skipped[6], (9, &Problem::NoUnits));
    assert_eq!(skipped[7], (10, &Problem::NoSpeechPlaceholder));

    // Stage 1 does not need units: line 9 is read then.
    let stage1 = read_manifest(
        &path,
        &ManifestOptions {
            require_units: false,
            ..OPTS
        },
    )
    .unwrap();
    assert!(stage1
        .records
        .iter()
        .any(|r| r.line == 9 && r.units.is_empty()));

    // Strict: the first bad line is an error naming the file and the line.
    let e = read_manifest(
        &path,
        &ManifestOptions {
            strict: true,
            ..OPTS
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{}:3: bad JSON", path.display())),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_manifest_with_no_usable_line_or_no_file_is_an_error() {
    let d = tempdir("empty");
    let path = write(
        &d,
        "bad.jsonl",
        r#"{"speech": "wavs/q1.wav", "answer": ""}"#,
    );
    let e = read_manifest(&path, &OPTS).unwrap_err();
    assert!(e.to_string().contains("no usable example"), "{e}");
    assert!(e.to_string().contains(":1: empty answer"), "{e}");
    let e = read_manifest(&d.join("absent.jsonl"), &OPTS).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn instructs2s_layout_takes_the_first_human_gpt_pair_of_each_dialogue() {
    let d = tempdir("s2s");
    // The published turn layout (ictnlp/LLaMA-Omni issue #66), with our WAVs.
    let json = r#"[
      [{"from": "human", "speech": "wavs/q1.wav", "text": "What is two plus two?", "unit": null},
       {"from": "gpt", "speech": "wavs/a1.wav", "text": "Four.", "unit": "<12><7><7><999>"},
       {"from": "human", "speech": "wavs/q2.wav", "text": "And three?", "unit": null},
       {"from": "gpt", "speech": "wavs/a2.wav", "text": "Six.", "unit": "<1>"}],
      [{"from": "human", "speech": "wavs/q2.wav", "text": "Name a color.", "unit": null},
       {"from": "gpt", "speech": "wavs/a3.wav", "text": "Red.", "unit": "<2957><4299>"}],
      [{"from": "gpt", "speech": "wavs/a3.wav", "text": "Hi.", "unit": "<1>"}],
      [{"from": "human", "speech": "wavs/q3.wav", "text": "Is the sky blue?", "unit": null},
       {"from": "gpt", "speech": "wavs/a4.wav", "text": "Yes.", "unit": "<3><4>"}]
    ]"#;
    let path = write(&d, "instruct.json", json);
    let m = read_manifest(&path, &OPTS).unwrap();
    assert_eq!(m.format, ManifestFormat::InstructS2S);
    let got: Vec<(usize, PathBuf, &str, Vec<u32>)> = m
        .records
        .iter()
        .map(|r| (r.line, r.speech.clone(), r.answer.as_str(), r.units.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            (1, d.join("wavs/q1.wav"), "Four.", vec![12, 7, 7, 999]),
            (4, d.join("wavs/q3.wav"), "Yes.", vec![3, 4]),
        ]
    );
    // CosyVoice-2 units (the released file's) do not fit a 1000-unit decoder.
    assert_eq!(
        m.skipped[0].problem,
        Problem::UnitOutOfRange {
            unit: 2957,
            unit_vocab_size: 1000
        }
    );
    assert_eq!(
        m.skipped[1].problem,
        Problem::MissingField("human → gpt turns")
    );
    assert!(m
        .describe(&m.skipped[0])
        .contains("instruct.json dialogue 2"));
    let _ = std::fs::remove_dir_all(&d);
}

fn tiny_model() -> TrainModel {
    TrainModel::load(&fixture("omni_tiny"), &OmniOptions::default()).unwrap()
}

#[test]
fn dataset_tokenizes_as_the_reference_and_buckets_by_length_in_a_seeded_order() {
    let d = tempdir("dataset");
    let answers = [
        "A long answer with many words in it.",
        "Short.",
        "Middle length answer.",
        "Tiny.",
        "Another fairly long answer, with a comma.",
        "Two words.",
        "Seven.",
    ];
    let text: Vec<String> = answers
        .iter()
        .enumerate()
        .map(|(i, a)| {
            format!(
                r#"{{"speech": "wavs/q{}.wav", "answer": "{a}", "units": [1]}}"#,
                i % 3 + 1
            )
        })
        .collect();
    let path = write(&d, "train.jsonl", &text.join("\n"));
    let m = read_manifest(&path, &OPTS).unwrap();
    let model = tiny_model();
    let tok = &model.tokenizer;
    let data = Dataset::new(&m, tok, model.config.llm.vocab_size, 2).unwrap();

    // Prompt = the reference's one-turn inference prompt; answer = text + <|eot_id|>.
    let prompt = tokenizer_speech_token(tok, &Conversation::single_turn().render()).unwrap();
    let eot = tok.encode("<|eot_id|>", false).unwrap();
    assert_eq!(eot.len(), 1, "<|eot_id|> is one special token");
    for t in &data.items {
        assert_eq!(t.prompt, prompt);
        assert_eq!(t.answer.last(), Some(&eot[0]));
        let text = tok.decode(&t.answer[..t.answer.len() - 1], false).unwrap();
        assert_eq!(text, t.record.answer);
    }

    // 7 examples, batches of 2: 4 buckets sorted by answer length.
    assert_eq!(data.batches_per_epoch(), 4);
    let lens: Vec<Vec<usize>> = data
        .buckets
        .iter()
        .map(|b| b.iter().map(|&i| data.items[i].answer.len()).collect())
        .collect();
    let flat: Vec<usize> = lens.iter().flatten().copied().collect();
    assert!(flat.windows(2).all(|w| w[0] <= w[1]), "{lens:?}");
    assert_eq!(lens.last().unwrap().len(), 1);

    // Each epoch visits every bucket once; the order depends on seed and epoch, repeatably.
    let mut orders = Vec::new();
    for epoch in 0..6 {
        let mut o = data.epoch_order(7, epoch);
        orders.push(o.clone());
        o.sort();
        assert_eq!(o, vec![0, 1, 2, 3]);
    }
    assert_eq!(orders[0], data.epoch_order(7, 0));
    assert!(
        orders.iter().any(|o| o != &orders[0]),
        "epochs reshuffle: {orders:?}"
    );
    let (epoch, b) = data.batch(7, 5);
    assert_eq!(epoch, 1);
    assert_eq!(b, &data.buckets[orders[1][1]][..]);

    // Examples: labels mask the prompt, keep the answer; the speech is the encoder's output.
    let ex = data.examples(&model, &data.buckets[0]).unwrap();
    for (e, &i) in ex.iter().zip(&data.buckets[0]) {
        let t = &data.items[i];
        assert_eq!(e.ids.len(), t.prompt.len() + t.answer.len());
        assert!(e.labels[..t.prompt.len()]
            .iter()
            .all(|&l| l == IGNORE_INDEX));
        let answer: Vec<i64> = t.answer.iter().map(|&x| x as i64).collect();
        assert_eq!(&e.labels[t.prompt.len()..], &answer[..]);
        assert_eq!(e.units, vec![1]);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn questions_at_any_rate_give_30_s_encoder_outputs_close_to_their_16k_version() {
    let d = tempdir("rates");
    let model = tiny_model();
    // q2 is 22.05 kHz, q3 8 kHz; both as the encoder sees them, and their 16 kHz copies.
    for q in ["q2", "q3"] {
        let src = d.join(format!("wavs/{q}.wav"));
        let (s, rate) = omni_core::audio::read_audio(&src).unwrap();
        assert_ne!(rate, 16000);
        let s16 = omni_core::audio::to_16k_mono(&s, rate).unwrap();
        let p16 = d.join(format!("{q}_16k.wav"));
        omni_core::audio::write_wav(&p16, &s16, 16000).unwrap();
        let a = model.encode_file(&src).unwrap();
        let b = model.encode_file(&p16).unwrap();
        assert_eq!(a.dims(), b.dims());
        assert_eq!(
            a.dims()[1],
            model.config.speech_encoder_hidden_size.unwrap()
        );
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        // Only the 16-bit rounding of the written copy differs.
        let err = common::max_rel_err(&a, &b);
        assert!(err < 1e-2, "{q}: {err}");
    }
    let e = model.encode_file(&d.join("wavs/absent.wav")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    let _ = std::fs::remove_dir_all(&d);
}
