//! [`Omni`]: every model part loaded once from the folders a user downloads,
//! shareable read-only across sessions and threads.
//!
//! Layout (the reference's):
//! - `model_dir/` = `Llama-3.1-8B-Omni/`: `config.json`, `model.safetensors.index.json`
//!   with its shards (or `model.safetensors`), `tokenizer.json`. The Whisper encoder comes
//!   from `config.speech_encoder` (`models/speech_encoder/large-v3.pt` in the
//!   published config), looked up relative to `model_dir`, then next to it, then
//!   relative to the working directory (see [`find_speech_encoder`]);
//!   `OmniOptions::speech_encoder` overrides it. When no `.pt` is
//!   found, the `model.speech_encoder.*` copy inside the shards is used.
//! - `vocoder_dir/`: `g_00500000` + `config.json`.

use std::path::{Path, PathBuf};

use crate::audio::MelFrontend;
use crate::device::{parse_device, Device};
use crate::model::adaptor::{AdaptorConfig, SpeechAdaptor};
use crate::model::llama::tokenizer::Tokenizer;
use crate::model::llama::{Llama, OmniConfig};
use crate::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use crate::model::vocoder::CodeHiFiGan;
use crate::model::whisper::{WhisperConfig, WhisperEncoder, WhisperKeyLayout};
use crate::progress::{report, ProgressFn};
use crate::weights::{RunDType, WeightStore};
use crate::{Error, Result};

/// How to load a model.
#[derive(Debug, Clone)]
pub struct OmniOptions {
    /// `cpu`, `wgpu`, `cuda:0`, … (see [`crate::device::parse_device`]).
    pub device: String,
    /// Run dtype of the encoder, adaptor, LLM and speech decoder (the vocoder
    /// runs in f32, as the reference). F16 halves memory; F32 is exact.
    pub dtype: RunDType,
    /// Overrides `config.speech_encoder` (the Whisper `.pt`).
    pub speech_encoder: Option<PathBuf>,
}

impl Default for OmniOptions {
    fn default() -> Self {
        OmniOptions {
            device: "cpu".into(),
            dtype: RunDType::F32,
            speech_encoder: None,
        }
    }
}

/// All four parts plus the tokenizer, immutable once loaded (share it in an `Arc`).
pub struct Omni {
    pub(crate) config: OmniConfig,
    pub(crate) encoder: WhisperEncoder,
    /// Log-mel frontend with the encoder's bin count.
    pub(crate) mel: MelFrontend,
    pub(crate) adaptor: SpeechAdaptor,
    pub(crate) llm: Llama,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) speech_generator: SpeechGenerator,
    pub(crate) vocoder: CodeHiFiGan,
    pub(crate) device: Device,
    pub(crate) model_dir: PathBuf,
}

impl Omni {
    /// The model's `config.json`.
    pub fn config(&self) -> &OmniConfig {
        &self.config
    }
    /// The Whisper encoder.
    pub fn encoder(&self) -> &WhisperEncoder {
        &self.encoder
    }
    /// The log-mel frontend (the encoder's bin count).
    pub fn mel(&self) -> &MelFrontend {
        &self.mel
    }
    /// The speech adaptor.
    pub fn adaptor(&self) -> &SpeechAdaptor {
        &self.adaptor
    }
    /// The LLM.
    pub fn llm(&self) -> &Llama {
        &self.llm
    }
    /// The LLM's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }
    /// The CTC speech decoder.
    pub fn speech_generator(&self) -> &SpeechGenerator {
        &self.speech_generator
    }
    /// The unit vocoder.
    pub fn vocoder(&self) -> &CodeHiFiGan {
        &self.vocoder
    }
    /// The device every part runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
    /// The folder the model was loaded from.
    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }
}

impl std::fmt::Debug for Omni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Omni({})", self.model_dir.display())
    }
}

/// The Whisper `.pt` to load: `opt.speech_encoder` when given (as is: a missing
/// file is then an error), else `config.speech_encoder` looked up in this order:
/// as given when absolute; else relative to `model_dir`, to its parent, its file
/// name in `model_dir`, and last relative to the working directory (where the
/// reference's scripts run from). The model's own folder comes first, so a file
/// of the same name in the working directory cannot shadow the model's.
pub fn find_speech_encoder(
    model_dir: &Path,
    cfg: &OmniConfig,
    opt: &OmniOptions,
) -> Option<PathBuf> {
    if let Some(p) = &opt.speech_encoder {
        return Some(p.clone());
    }
    let rel = PathBuf::from(cfg.speech_encoder.as_deref()?);
    if rel.as_os_str().is_empty() {
        return None;
    }
    if rel.is_absolute() {
        return Some(rel).filter(|p| p.is_file());
    }
    let mut candidates = vec![model_dir.join(&rel)];
    if let Some(parent) = model_dir.parent() {
        candidates.push(parent.join(&rel));
    }
    if let Some(name) = rel.file_name() {
        candidates.push(model_dir.join(name));
    }
    candidates.push(rel);
    candidates.into_iter().find(|p| p.is_file())
}

impl Omni {
    /// Loads everything. `progress` is called per loaded unit (stage names:
    /// `speech encoder`, `llm`, `speech decoder`, `vocoder`).
    pub fn load(
        model_dir: impl AsRef<Path>,
        vocoder_dir: impl AsRef<Path>,
        opt: &OmniOptions,
        mut progress: Option<ProgressFn<'_>>,
    ) -> Result<Self> {
        let model_dir = model_dir.as_ref();
        let device = parse_device(&opt.device)?;
        let cfg_path = model_dir.join("config.json");
        let config = OmniConfig::from_file(&cfg_path)?;
        let dtype = opt.dtype;
        let store = WeightStore::open_hf_dir(model_dir)?;

        // Speech encoder: the .pt the config names (as the reference), else the shards' copy.
        report(&mut progress, "speech encoder", 0, 1);
        let encoder = match find_speech_encoder(model_dir, &config, opt) {
            Some(pt) => {
                let wcfg = WhisperConfig::from_openai_pt(&pt)?;
                let ws = WeightStore::open_pytorch(&pt, Some("model_state_dict"))?.sub("encoder.");
                WhisperEncoder::load(&ws, &wcfg, dtype, &device)?
            }
            None if store.has_prefix("model.speech_encoder.") => {
                let ws = store.sub("model.speech_encoder.");
                let layout = WhisperKeyLayout::detect(&ws).ok_or_else(|| Error::MissingKey {
                    path: model_dir.to_path_buf(),
                    key: "model.speech_encoder.blocks.0.attn.query.weight".into(),
                })?;
                let wcfg = layout.infer_config(&ws)?;
                WhisperEncoder::load(&ws, &wcfg, dtype, &device)?
            }
            None => {
                return Err(Error::MissingFile {
                    path: PathBuf::from(config.speech_encoder.clone().unwrap_or_else(|| "large-v3.pt".into())),
                    what: format!(
                        "Whisper encoder named by {} (`speech_encoder`), looked up in {}, next to it and in the working directory; \
                         download it with `whisper.load_model(\"large-v3\", download_root=...)` or pass its path",
                        crate::error::clip_path(&cfg_path),
                        crate::error::clip_path(model_dir)
                    ),
                })
            }
        };
        report(&mut progress, "speech encoder", 1, 1);

        let acfg = AdaptorConfig::from_omni(&config, &cfg_path)?;
        let adaptor =
            SpeechAdaptor::load(&store, "model.speech_projector.", &acfg, dtype, &device)?;
        let llm = Llama::load(
            &store,
            &config.llm,
            dtype,
            &device,
            progress.as_deref_mut().map(|p| p as ProgressFn<'_>),
        )?;

        let ccfg = CtcDecoderConfig::from_omni(&config, &cfg_path)?;
        report(&mut progress, "speech decoder", 0, 1);
        let speech_generator = SpeechGenerator::load(
            &store,
            "speech_generator.",
            &config.llm,
            &ccfg,
            dtype,
            &device,
        )?;
        report(&mut progress, "speech decoder", 1, 1);

        let tok_path = model_dir.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&tok_path)?;

        report(&mut progress, "vocoder", 0, 1);
        let vocoder = CodeHiFiGan::load(vocoder_dir.as_ref(), &device)?;
        report(&mut progress, "vocoder", 1, 1);
        let mel = MelFrontend::new(encoder.config.n_mels)?;
        log::info!(
            "loaded {} (vocoder {}) on {} as {:?}",
            model_dir.display(),
            vocoder_dir.as_ref().display(),
            opt.device,
            dtype
        );
        Ok(Omni {
            config,
            mel,
            encoder,
            adaptor,
            llm,
            tokenizer,
            speech_generator,
            vocoder,
            device,
            model_dir: model_dir.to_path_buf(),
        })
    }
}
