//! [`CodeHiFiGan`]: fairseq's `CodeGenerator` as `CodeHiFiGANVocoder` runs it with
//! `dur_prediction=True`: unit embedding (`dict.weight`) → duration predictor →
//! repeat each unit's embedding for its duration → HiFi-GAN generator → 16 kHz PCM.

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::VocoderConfig;
use super::duration::{round_durations, DurationPredictor};
use super::hifigan::HifiGanGenerator;
use crate::weights::WeightStore;
use crate::{Error, Result};

/// File name of the published checkpoint (`vocoder/g_00500000`).
pub const CHECKPOINT_NAME: &str = "g_00500000";
/// File name of its config.
pub const CONFIG_NAME: &str = "config.json";
/// The pickle's top-level key holding the generator's state dict.
pub const TOP_KEY: &str = "generator";

/// The unit HiFi-GAN vocoder with duration prediction, in f32.
#[derive(Module, Debug)]
pub struct CodeHiFiGan {
    /// Unit embeddings `[num_embeddings, embedding_dim]` (`dict.weight`).
    pub dict: Param<Tensor<2>>,
    /// `None` when the config has no `dur_predictor_params` (every unit lasts one frame).
    pub dur_predictor: Option<DurationPredictor>,
    pub generator: HifiGanGenerator,
    #[module(skip)]
    pub config: VocoderConfig,
}

/// Finds the checkpoint in a vocoder folder: `g_00500000`, else the only `g_*` file.
fn find_checkpoint(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(CHECKPOINT_NAME);
    if p.is_file() {
        return Ok(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("g_"))
        })
        .collect();
    if found.len() == 1 {
        if let Some(only) = found.pop() {
            return Ok(only);
        }
    }
    Err(Error::MissingFile {
        path: p,
        what: if found.is_empty() {
            "vocoder checkpoint (fairseq unit HiFi-GAN `g_*` file)".into()
        } else {
            format!(
                "vocoder checkpoint: {} `g_*` files found, name one explicitly",
                found.len()
            )
        },
    })
}

impl CodeHiFiGan {
    /// Loads the vocoder from `path`: a folder holding `g_00500000` and `config.json`
    /// (LLaMA-Omni's `vocoder/`), or the checkpoint file itself with `config.json`
    /// beside it.
    pub fn load(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref();
        if path.is_dir() {
            let ckpt = find_checkpoint(path)?;
            Self::load_files(&ckpt, &path.join(CONFIG_NAME), device)
        } else if path.is_file() {
            let dir = path.parent().unwrap_or(Path::new("."));
            Self::load_files(path, &dir.join(CONFIG_NAME), device)
        } else {
            Err(Error::MissingFile {
                path: path.to_path_buf(),
                what: "vocoder folder (g_00500000 + config.json) or checkpoint".into(),
            })
        }
    }

    /// Loads from an explicit checkpoint (torch pickle with key `generator`) and config.
    pub fn load_files(checkpoint: &Path, config: &Path, device: &Device) -> Result<Self> {
        let cfg = VocoderConfig::from_json_file(config)?;
        let store = WeightStore::open_pytorch(checkpoint, Some(TOP_KEY))?;
        Self::from_store(&store, cfg, device)
    }

    /// Builds the vocoder from a store holding the generator's keys (`dict.weight`,
    /// `dur_predictor.*`, `conv_pre.*`, `ups.N.*`, `resblocks.N.*`, `conv_post.*`).
    pub fn from_store(store: &WeightStore, config: VocoderConfig, device: &Device) -> Result<Self> {
        let config = config.validate(store.origin())?;
        let (n, e) = (config.num_embeddings, config.embedding_dim);
        let dict = store.read_f32("dict.weight", &[n, e])?;
        let dict = Tensor::<2>::from_data(TensorData::new(dict, [n, e]), device);
        let dur_predictor = match &config.dur_predictor_params {
            Some(p) => Some(DurationPredictor::load(store, p, device)?),
            None => None,
        };
        let generator = HifiGanGenerator::load(store, &config, device)?;
        Ok(CodeHiFiGan {
            dict: Param::from_tensor(dict),
            dur_predictor,
            generator,
            config,
        })
    }

    /// Device of the weights.
    pub fn device(&self) -> Device {
        self.dict.val().device()
    }

    /// Output sample rate (16 kHz).
    pub fn sample_rate(&self) -> u32 {
        self.config.sampling_rate
    }

    /// Output samples per unit frame (320 = 20 ms at 16 kHz), when exact.
    pub fn samples_per_frame(&self) -> Option<usize> {
        self.config.samples_per_frame()
    }

    fn check_units(&self, units: &[u32]) -> Result<()> {
        if units.is_empty() {
            return Err(Error::InvalidInput(
                "the vocoder got an empty unit sequence".into(),
            ));
        }
        if let Some((i, bad)) = units
            .iter()
            .enumerate()
            .find(|(_, &u)| u as usize >= self.config.num_embeddings)
        {
            return Err(Error::InvalidInput(format!(
                "unit {bad} at position {i} is out of range: the vocoder has {} units (0..={})",
                self.config.num_embeddings,
                self.config.num_embeddings - 1
            )));
        }
        Ok(())
    }

    /// Embeddings `[1, C, T]` (channels first) of checked units.
    fn embed(&self, units: &[u32]) -> Tensor<3> {
        let idx: Vec<i64> = units.iter().map(|&u| u as i64).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [units.len()]), &self.device());
        self.dict.val().select(0, idx).transpose().unsqueeze::<3>()
    }

    fn predict(&self, x: &Tensor<3>) -> Result<Vec<usize>> {
        let t = x.dims()[2];
        let Some(dp) = &self.dur_predictor else {
            return Ok(vec![1; t]);
        };
        let log_dur = dp
            .forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::InvalidInput(format!("duration readback: {e:?}")))?;
        round_durations(&log_dur)
    }

    /// The raw log-durations (the duration predictor's output) of `units`.
    pub fn log_durations(&self, units: &[u32]) -> Result<Vec<f32>> {
        self.check_units(units)?;
        let Some(dp) = &self.dur_predictor else {
            return Err(Error::InvalidInput(
                "this vocoder has no duration predictor".into(),
            ));
        };
        dp.forward(self.embed(units))
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::InvalidInput(format!("duration readback: {e:?}")))
    }

    /// Duration of each unit in frames, as `CodeGenerator` computes it with
    /// `dur_prediction=True` (all 1 without a duration predictor).
    pub fn durations(&self, units: &[u32]) -> Result<Vec<usize>> {
        self.check_units(units)?;
        self.predict(&self.embed(units))
    }

    /// Synthesizes `units` as one utterance: PCM at [`Self::sample_rate`].
    pub fn synthesize(&self, units: &[u32]) -> Result<Vec<f32>> {
        self.synthesize_parts(units, &[]).map(|(wav, _)| wav)
    }

    /// Synthesizes `units` with the given per-unit durations (frames, each ≥ 1).
    pub fn synthesize_with_durations(
        &self,
        units: &[u32],
        durations: &[usize],
    ) -> Result<Vec<f32>> {
        if durations.len() != units.len() {
            return Err(Error::InvalidInput(format!(
                "{} durations for {} units",
                durations.len(),
                units.len()
            )));
        }
        self.synthesize_parts(units, durations).map(|(wav, _)| wav)
    }

    /// Synthesizes `units`; the first `forced.len()` units take the durations in
    /// `forced`, the others the predicted ones (predicted over the whole sequence).
    /// Returns the PCM and the durations used.
    pub fn synthesize_parts(
        &self,
        units: &[u32],
        forced: &[usize],
    ) -> Result<(Vec<f32>, Vec<usize>)> {
        self.check_units(units)?;
        if forced.len() > units.len() || forced.contains(&0) {
            return Err(Error::InvalidInput(format!(
                "{} forced durations (each ≥ 1) for {} units",
                forced.len(),
                units.len()
            )));
        }
        let x = self.embed(units);
        let mut dur = if forced.len() == units.len() {
            forced.to_vec()
        } else {
            self.predict(&x)?
        };
        dur[..forced.len()].copy_from_slice(forced);
        // repeat_interleave along time: select the columns of the embeddings.
        let frames: Vec<i64> = dur
            .iter()
            .enumerate()
            .flat_map(|(i, &d)| std::iter::repeat_n(i as i64, d))
            .collect();
        let n = frames.len();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(frames, [n]), &self.device());
        let x = x.select(2, idx);
        let wav = self
            .generator
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| Error::InvalidInput(format!("waveform readback: {e:?}")))?;
        Ok((wav, dur))
    }
}
