//! Loading a model: where the speech encoder is looked up, configs that cannot
//! work, and the kind of each failure (a missing file is `Io`, a malformed one
//! `Model`). Every path here is absolute: one test changes the working directory.

mod common;

use std::path::{Path, PathBuf};

use common::fixture;
use omni_core::find_speech_encoder;
use omni_core::model::llama::OmniConfig;
use omni_core::{Error, ErrorKind, Omni, OmniOptions};

fn tmp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("omni-model-loading-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(model_dir: &Path, opt: &OmniOptions) -> omni_core::Result<Omni> {
    Omni::load(model_dir, fixture("vocoder/tiny"), opt, None)
}

#[test]
fn a_speech_encoder_pt_in_the_working_directory_does_not_shadow_the_models() {
    let cwd = tmp_dir("cwd");
    std::fs::write(cwd.join("speech_encoder.pt"), b"not a checkpoint").unwrap();
    let model_dir = fixture("omni_tiny");
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(&cwd).unwrap();
    let cfg = OmniConfig::from_file(&model_dir.join("config.json")).unwrap();
    assert_eq!(cfg.speech_encoder.as_deref(), Some("speech_encoder.pt"));
    let found = find_speech_encoder(&model_dir, &cfg, &OmniOptions::default());
    let loaded = load(&model_dir, &OmniOptions::default());
    std::env::set_current_dir(before).unwrap();
    std::fs::remove_dir_all(&cwd).ok();
    assert_eq!(found, Some(model_dir.join("speech_encoder.pt")));
    loaded.expect("the model's own speech_encoder.pt loads");
}

#[test]
fn a_missing_speech_encoder_file_is_an_io_error() {
    for p in ["/nonexistent/whisper.pt", ""] {
        let opt = OmniOptions {
            speech_encoder: Some(PathBuf::from(p)),
            ..OmniOptions::default()
        };
        let err = load(&fixture("omni_tiny"), &opt).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Io, "`{p}`: {err:?}");
        assert!(err.to_string().contains(p), "{err}");
    }
}

#[test]
fn a_malformed_speech_encoder_file_is_a_model_error() {
    let dir = tmp_dir("bad-pt");
    let pt = dir.join("whisper.pt");
    std::fs::write(&pt, b"not a checkpoint").unwrap();
    let opt = OmniOptions {
        speech_encoder: Some(pt),
        ..OmniOptions::default()
    };
    let err = load(&fixture("omni_tiny"), &opt).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Model);
}

/// The fixture's config.json with `edit` applied, read back by `OmniConfig::from_file`.
fn config_with(
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> omni_core::Result<OmniConfig> {
    let text = std::fs::read_to_string(fixture("omni_tiny/config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    edit(&mut v);
    let dir = tmp_dir(name);
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let r = OmniConfig::from_file(&path);
    std::fs::remove_dir_all(&dir).ok();
    r
}

#[test]
fn configs_that_cannot_work_are_refused_at_load_naming_the_field() {
    use serde_json::json;
    assert!(config_with("unchanged", |_| {}).is_ok());
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "max_position_embeddings",
            json!(0),
            "max_position_embeddings",
        ),
        ("num_hidden_layers", json!(0), "num_hidden_layers"),
        ("hidden_size", json!(0), "hidden_size"),
        ("hidden_size", json!(66), "hidden_size"),
        ("intermediate_size", json!(0), "intermediate_size"),
        ("num_attention_heads", json!(0), "num_attention_heads"),
        ("num_key_value_heads", json!(0), "num_key_value_heads"),
        ("num_key_value_heads", json!(3), "num_key_value_heads"),
        ("vocab_size", json!(0), "vocab_size"),
        ("bos_token_id", json!(512), "bos_token_id"),
        ("rms_norm_eps", json!(0.0), "rms_norm_eps"),
        ("rope_theta", json!(-1.0), "rope_theta"),
        ("unit_vocab_size", json!(0), "unit_vocab_size"),
        ("ctc_upsample_factor", json!(0), "ctc_upsample_factor"),
        ("speech_encoder_ds_rate", json!(0), "speech_encoder_ds_rate"),
        (
            "speech_encoder_hidden_size",
            json!(0),
            "speech_encoder_hidden_size",
        ),
        (
            "ctc_decoder_config",
            json!("(2,0,4,160)"),
            "ctc_decoder_config",
        ),
        (
            "ctc_decoder_config",
            json!("(2,64,4,0)"),
            "ctc_decoder_config",
        ),
    ];
    for (i, (field, value, named)) in cases.into_iter().enumerate() {
        let shown = value.to_string();
        let err = config_with(&format!("case{i}"), |v| v[field] = value).unwrap_err();
        assert!(
            matches!(err, Error::Config { .. }),
            "{field} = {shown}: {err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::Model);
        assert!(err.to_string().contains(named), "{field} = {shown}: {err}");
    }
    let err = config_with("rope", |v| {
        v["rope_scaling"]["high_freq_factor"] = serde_json::json!(1.0)
    })
    .unwrap_err();
    assert!(err.to_string().contains("high_freq_factor"), "{err}");
}

#[test]
fn a_zero_max_position_embeddings_model_fails_at_load_not_at_session_creation() {
    // The whole folder (symlinked) with only that field changed: Omni::load itself refuses it.
    let dir = tmp_dir("maxpos");
    let src = fixture("omni_tiny");
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        if e.file_name() != "config.json" {
            std::os::unix::fs::symlink(e.path(), dir.join(e.file_name())).unwrap();
        }
    }
    let text = std::fs::read_to_string(src.join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["max_position_embeddings"] = serde_json::json!(0);
    std::fs::write(dir.join("config.json"), v.to_string()).unwrap();
    let err = load(&dir, &OmniOptions::default()).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(err.kind(), ErrorKind::Model);
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
}
