//! The model parts training uses, loaded from a published model folder as
//! [`crate::Omni::load`] loads them, minus the vocoder (training never runs it):
//! the frozen Whisper encoder + mel frontend, the adaptor, the LLM, the speech
//! decoder and the tokenizer. All are plain (non-autodiff) modules; the
//! trainer makes the trained ones trainable with `Module::train()`.

use std::path::{Path, PathBuf};

use burn::tensor::Tensor;

use crate::audio::{read_audio, to_16k_mono, MelFrontend};
use crate::bundle::{find_speech_encoder, OmniOptions};
use crate::device::{parse_device, Device};
use crate::model::adaptor::{AdaptorConfig, SpeechAdaptor};
use crate::model::llama::tokenizer::Tokenizer;
use crate::model::llama::{Llama, OmniConfig};
use crate::model::speech_decoder::{CtcDecoderConfig, SpeechGenerator};
use crate::model::whisper::{WhisperConfig, WhisperEncoder, WhisperKeyLayout};
use crate::weights::WeightStore;
use crate::{Error, Result};

/// Everything but the vocoder.
pub struct TrainModel {
    pub config: OmniConfig,
    pub encoder: WhisperEncoder,
    pub mel: MelFrontend,
    pub adaptor: SpeechAdaptor,
    pub llm: Llama,
    pub speech_generator: SpeechGenerator,
    pub tokenizer: Tokenizer,
    pub device: Device,
    pub model_dir: PathBuf,
}

impl TrainModel {
    /// Loads `model_dir` on `opt.device` in `opt.dtype` (f32 to train).
    pub fn load(model_dir: &Path, opt: &OmniOptions) -> Result<Self> {
        let device = parse_device(&opt.device)?;
        let cfg_path = model_dir.join("config.json");
        let config = OmniConfig::from_file(&cfg_path)?;
        // Burn layers throughout: gradients flow through burn's ops, not omni-kernels.
        let store = WeightStore::open_hf_dir(model_dir)?.dense_only();
        let dtype = opt.dtype;
        // As `Omni::load`: the config's `.pt`, else the shards' copy.
        let encoder = match find_speech_encoder(model_dir, &config, opt) {
            Some(pt) => {
                let wcfg = WhisperConfig::from_openai_pt(&pt)?;
                let ws = WeightStore::open_pytorch(&pt, Some("model_state_dict"))?
                    .sub("encoder.")
                    .dense_only();
                WhisperEncoder::load(&ws, &wcfg, dtype, &device)?
            }
            None => {
                let ws = store.sub("model.speech_encoder.");
                let layout = WhisperKeyLayout::detect(&ws).ok_or_else(|| Error::MissingFile {
                    path: model_dir.join("large-v3.pt"),
                    what: "Whisper encoder (config `speech_encoder` or model.speech_encoder.* in the shards)"
                        .into(),
                })?;
                WhisperEncoder::load(&ws, &layout.infer_config(&ws)?, dtype, &device)?
            }
        };
        let acfg = AdaptorConfig::from_config_json(&cfg_path)?;
        let adaptor =
            SpeechAdaptor::load(&store, "model.speech_projector.", &acfg, dtype, &device)?;
        let llm = Llama::load(&store, &config.llm, dtype, &device, None)?;
        let ccfg = CtcDecoderConfig::from_omni(&config, &cfg_path)?;
        let speech_generator = SpeechGenerator::load(
            &store,
            "speech_generator.",
            &config.llm,
            &ccfg,
            dtype,
            &device,
        )?;
        let tokenizer = Tokenizer::from_file(model_dir.join("tokenizer.json"))?;
        let mel = MelFrontend::new(encoder.config.n_mels)?;
        Ok(TrainModel {
            config,
            encoder,
            mel,
            adaptor,
            llm,
            speech_generator,
            tokenizer,
            device,
            model_dir: model_dir.to_path_buf(),
        })
    }

    /// The speech decoder's unit vocabulary.
    pub fn unit_vocab_size(&self) -> usize {
        self.speech_generator.config.unit_vocab_size
    }

    /// The frozen encoder's output `[frames, encoder_dim]` for one audio file,
    /// as the reference's data pipeline makes it (`whisper.load_audio` at 16 kHz,
    /// `pad_or_trim` to 30 s, `log_mel_spectrogram`, the encoder): longer audio
    /// is cut at 30 s, as the reference cuts it.
    pub fn encode_file(&self, path: &Path) -> Result<Tensor<2>> {
        let (samples, rate) = read_audio(path)?;
        let audio = to_16k_mono(&samples, rate)?;
        let lm = self.mel.log_mel_30s(&audio)?;
        let x = self.encoder.mel_tensor(&lm.data, lm.n_mels, lm.n_frames)?;
        let enc = self.encoder.forward(x)?;
        let [_, t, c] = enc.dims();
        Ok(enc.reshape([t, c]))
    }
}
