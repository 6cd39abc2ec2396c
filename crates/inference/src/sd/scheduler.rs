//! Noise schedulers (DDIM, Euler ancestral, DDPM) following diffusers, with the noise supplied
//! by the caller.
//!
//! candle's schedulers draw their ancestral noise from the device RNG, which cannot be seeded
//! on the CPU and differs between devices, so every node would denoise differently. These take
//! the noise as an argument (see [`crate::noise`]). Coefficients are computed in f64.

use std::path::Path;

use candle_core::Tensor;

use crate::{
    error::{InferenceError, Result},
    sd::config::SchedulerJson,
};

/// The sampling algorithm a task asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchedulerKind {
    /// DDIM with `eta = 0` (deterministic given the initial latents).
    Ddim,
    /// Euler ancestral (k-diffusion's `sample_euler_ancestral`): fresh noise every step.
    EulerAncestral,
    /// DDPM ancestral sampling: fresh noise every step.
    Ddpm,
}

impl From<verinfer_task::Scheduler> for SchedulerKind {
    fn from(scheduler: verinfer_task::Scheduler) -> Self {
        match scheduler {
            verinfer_task::Scheduler::Ddim => Self::Ddim,
            verinfer_task::Scheduler::EulerAncestral => Self::EulerAncestral,
            verinfer_task::Scheduler::Ddpm => Self::Ddpm,
        }
    }
}

/// What the UNet predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionType {
    /// The added noise.
    Epsilon,
    /// `v = sqrt(ᾱ) ε - sqrt(1-ᾱ) x0`.
    VPrediction,
    /// The clean sample.
    Sample,
}

/// A scheduler configured for one run of `steps` steps.
#[derive(Debug, Clone)]
pub struct Scheduler {
    kind: SchedulerKind,
    prediction: PredictionType,
    alphas_cumprod: Vec<f64>,
    /// The UNet's timestep input at each step (fractional for Euler with `linspace`).
    timesteps: Vec<f64>,
    /// Euler: sigma at each step, plus a final 0.
    sigmas: Vec<f64>,
    /// DDIM/DDPM: distance to the previous timestep.
    step_ratio: usize,
    final_alpha_cumprod: f64,
    clip_sample: Option<f64>,
    fixed_large_variance: bool,
    init_noise_sigma: f64,
}

impl Scheduler {
    /// Builds `kind` for `steps` steps from the model's `scheduler_config.json` (`path` is
    /// named in errors).
    pub fn new(
        kind: SchedulerKind,
        config: &SchedulerJson,
        steps: usize,
        path: &Path,
    ) -> Result<Self> {
        let train = config.num_train_timesteps;
        if steps == 0 || steps > train {
            return Err(InferenceError::InvalidParams(format!(
                "{steps} steps is outside 1..={train} (the model's training timesteps)"
            )));
        }
        if config.thresholding {
            return Err(InferenceError::config(
                path,
                "thresholding = true is not supported",
            ));
        }
        if config.rescale_betas_zero_snr {
            return Err(InferenceError::config(
                path,
                "rescale_betas_zero_snr = true is not supported",
            ));
        }
        let prediction = match config.prediction_type.as_str() {
            "epsilon" => PredictionType::Epsilon,
            "v_prediction" => PredictionType::VPrediction,
            "sample" if kind != SchedulerKind::EulerAncestral => PredictionType::Sample,
            other => {
                return Err(InferenceError::config(
                    path,
                    format!("prediction_type {other:?} is not supported with {kind:?}"),
                ));
            }
        };
        let betas = betas(config, path)?;
        let mut alphas_cumprod = Vec::with_capacity(train);
        let mut product = 1.0;
        for beta in betas {
            product *= 1.0 - beta;
            alphas_cumprod.push(product);
        }
        let default_spacing = match kind {
            SchedulerKind::EulerAncestral => "linspace",
            SchedulerKind::Ddim | SchedulerKind::Ddpm => "leading",
        };
        let spacing = config
            .timestep_spacing
            .as_deref()
            .unwrap_or(default_spacing);
        let step_ratio = train / steps;
        let timesteps: Vec<f64> = match spacing {
            "linspace" => {
                let values = linspace(0.0, (train - 1) as f64, steps);
                match kind {
                    // Euler keeps fractional timesteps and interpolates sigmas between them.
                    SchedulerKind::EulerAncestral => values.into_iter().rev().collect(),
                    _ => values.into_iter().rev().map(f64::round).collect(),
                }
            }
            "leading" => (0..steps)
                .rev()
                .map(|i| (i * step_ratio + config.steps_offset) as f64)
                .collect(),
            "trailing" => {
                let ratio = train as f64 / steps as f64;
                (0..steps)
                    .map(|i| (train as f64 - i as f64 * ratio).round() - 1.0)
                    .collect()
            }
            other => {
                return Err(InferenceError::config(
                    path,
                    format!("timestep_spacing {other:?} is not supported"),
                ));
            }
        };
        if let Some(bad) = timesteps
            .iter()
            .find(|&&t| !(0.0..train as f64).contains(&t))
        {
            return Err(InferenceError::config(
                path,
                format!(
                    "timestep {bad} falls outside the {train} training timesteps (check steps_offset)"
                ),
            ));
        }
        let (sigmas, init_noise_sigma) = if kind == SchedulerKind::EulerAncestral {
            let all: Vec<f64> = alphas_cumprod
                .iter()
                .map(|&a| ((1.0 - a) / a).sqrt())
                .collect();
            let mut sigmas: Vec<f64> = timesteps.iter().map(|&t| interp(t, &all)).collect();
            sigmas.push(0.0);
            let max = sigmas.iter().copied().fold(0.0, f64::max);
            let init = if matches!(spacing, "linspace" | "trailing") {
                max
            } else {
                (max * max + 1.0).sqrt()
            };
            (sigmas, init)
        } else {
            (Vec::new(), 1.0)
        };
        let clip_sample = config
            .clip_sample
            .unwrap_or(true)
            .then_some(config.clip_sample_range);
        let fixed_large_variance = match (kind, config.variance_type.as_deref()) {
            (SchedulerKind::Ddpm, None | Some("fixed_small"))
            | (SchedulerKind::Ddim | SchedulerKind::EulerAncestral, _) => false,
            (SchedulerKind::Ddpm, Some("fixed_large")) => true,
            (SchedulerKind::Ddpm, Some(other)) => {
                return Err(InferenceError::config(
                    path,
                    format!("variance_type {other:?} is not supported"),
                ));
            }
        };
        let final_alpha_cumprod = match kind {
            SchedulerKind::Ddim if !config.set_alpha_to_one => alphas_cumprod[0],
            _ => 1.0,
        };
        Ok(Self {
            kind,
            prediction,
            alphas_cumprod,
            timesteps,
            sigmas,
            step_ratio,
            final_alpha_cumprod,
            clip_sample,
            fixed_large_variance,
            init_noise_sigma,
        })
    }

    /// The UNet's timestep input at each step.
    pub fn timesteps(&self) -> &[f64] {
        &self.timesteps
    }

    /// Scale of the initial latents (standard normals are multiplied by it).
    pub fn init_noise_sigma(&self) -> f64 {
        self.init_noise_sigma
    }

    /// Whether [`step`](Self::step) consumes noise.
    pub fn is_ancestral(&self) -> bool {
        matches!(
            self.kind,
            SchedulerKind::EulerAncestral | SchedulerKind::Ddpm
        )
    }

    /// The UNet input at step `index`.
    pub fn scale_model_input(&self, sample: &Tensor, index: usize) -> Result<Tensor> {
        Ok(match self.kind {
            SchedulerKind::EulerAncestral => (sample / (self.sigmas[index].powi(2) + 1.0).sqrt())?,
            SchedulerKind::Ddim | SchedulerKind::Ddpm => sample.clone(),
        })
    }

    /// One denoising step: the sample for step `index + 1`. Ancestral schedulers need `noise`
    /// (standard normals shaped like `sample`).
    pub fn step(
        &self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: Option<&Tensor>,
    ) -> Result<Tensor> {
        let noise = || {
            noise.ok_or_else(|| {
                InferenceError::InvalidParams(format!("{:?} needs noise at every step", self.kind))
            })
        };
        match self.kind {
            SchedulerKind::Ddim => self.ddim_step(model_output, index, sample),
            SchedulerKind::Ddpm => self.ddpm_step(model_output, index, sample, noise()?),
            SchedulerKind::EulerAncestral => {
                self.euler_ancestral_step(model_output, index, sample, noise()?)
            }
        }
    }

    fn timestep(&self, index: usize) -> usize {
        // DDIM/DDPM timesteps are whole numbers by construction.
        self.timesteps[index] as usize
    }

    /// `(x0, ε)` predicted from the model output at `ᾱ_t`.
    fn predict(
        &self,
        model_output: &Tensor,
        sample: &Tensor,
        alpha_prod: f64,
    ) -> Result<(Tensor, Tensor)> {
        let (a, b) = (alpha_prod.sqrt(), (1.0 - alpha_prod).sqrt());
        let (x0, eps) = match self.prediction {
            PredictionType::Epsilon => {
                (((sample - (model_output * b)?)? / a)?, model_output.clone())
            }
            PredictionType::VPrediction => (
                ((sample * a)? - (model_output * b)?)?,
                ((model_output * a)? + (sample * b)?)?,
            ),
            PredictionType::Sample => {
                (model_output.clone(), ((sample - (model_output * a)?)? / b)?)
            }
        };
        let x0 = match self.clip_sample {
            Some(range) => x0.clamp(-range, range)?,
            None => x0,
        };
        Ok((x0, eps))
    }

    fn ddim_step(&self, model_output: &Tensor, index: usize, sample: &Tensor) -> Result<Tensor> {
        let t = self.timestep(index);
        let alpha_prod = self.alphas_cumprod[t];
        let alpha_prev = t
            .checked_sub(self.step_ratio)
            .map_or(self.final_alpha_cumprod, |p| self.alphas_cumprod[p]);
        let (x0, eps) = self.predict(model_output, sample, alpha_prod)?;
        // eta = 0: no noise, direction term uses the full (1 - ᾱ_prev).
        Ok(((x0 * alpha_prev.sqrt())? + (eps * (1.0 - alpha_prev).sqrt())?)?)
    }

    fn ddpm_step(
        &self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &Tensor,
    ) -> Result<Tensor> {
        let t = self.timestep(index);
        let alpha_prod = self.alphas_cumprod[t];
        let alpha_prev = t
            .checked_sub(self.step_ratio)
            .map_or(1.0, |p| self.alphas_cumprod[p]);
        let beta_prod = 1.0 - alpha_prod;
        let beta_prev = 1.0 - alpha_prev;
        let current_alpha = alpha_prod / alpha_prev;
        let current_beta = 1.0 - current_alpha;
        let (x0, _) = self.predict(model_output, sample, alpha_prod)?;
        let x0_coeff = alpha_prev.sqrt() * current_beta / beta_prod;
        let sample_coeff = current_alpha.sqrt() * beta_prev / beta_prod;
        let mean = ((x0 * x0_coeff)? + (sample * sample_coeff)?)?;
        if t == 0 {
            return Ok(mean);
        }
        let variance = if self.fixed_large_variance {
            current_beta
        } else {
            (beta_prev / beta_prod * current_beta).max(1e-20)
        };
        Ok((mean + (noise * variance.sqrt())?)?)
    }

    fn euler_ancestral_step(
        &self,
        model_output: &Tensor,
        index: usize,
        sample: &Tensor,
        noise: &Tensor,
    ) -> Result<Tensor> {
        let sigma = self.sigmas[index];
        let sigma_to = self.sigmas[index + 1];
        let x0 = match self.prediction {
            PredictionType::Epsilon => (sample - (model_output * sigma)?)?,
            PredictionType::VPrediction => {
                ((model_output * (-sigma / (sigma * sigma + 1.0).sqrt()))?
                    + (sample / (sigma * sigma + 1.0))?)?
            }
            PredictionType::Sample => unreachable!("refused in Scheduler::new"),
        };
        let sigma_up =
            (sigma_to.powi(2) * (sigma.powi(2) - sigma_to.powi(2)) / sigma.powi(2)).sqrt();
        let sigma_down = (sigma_to.powi(2) - sigma_up.powi(2)).sqrt();
        let derivative = ((sample - x0)? / sigma)?;
        let previous = (sample + (derivative * (sigma_down - sigma))?)?;
        Ok((previous + (noise * sigma_up)?)?)
    }
}

fn betas(config: &SchedulerJson, path: &Path) -> Result<Vec<f64>> {
    let train = config.num_train_timesteps;
    if train == 0 {
        return Err(InferenceError::config(path, "num_train_timesteps is 0"));
    }
    if let Some(trained) = &config.trained_betas {
        if trained.len() != train {
            return Err(InferenceError::config(
                path,
                format!(
                    "trained_betas has {} entries, num_train_timesteps is {train}",
                    trained.len()
                ),
            ));
        }
        return Ok(trained.clone());
    }
    let betas = match config.beta_schedule.as_str() {
        "linear" => linspace(config.beta_start, config.beta_end, train),
        "scaled_linear" => linspace(config.beta_start.sqrt(), config.beta_end.sqrt(), train)
            .into_iter()
            .map(|b| b * b)
            .collect(),
        "squaredcos_cap_v2" => {
            let alpha_bar = |t: f64| {
                ((t + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                    .cos()
                    .powi(2)
            };
            (0..train)
                .map(|i| {
                    let (t1, t2) = (i as f64 / train as f64, (i + 1) as f64 / train as f64);
                    (1.0 - alpha_bar(t2) / alpha_bar(t1)).min(0.999)
                })
                .collect()
        }
        other => {
            return Err(InferenceError::config(
                path,
                format!("beta_schedule {other:?} is not supported"),
            ));
        }
    };
    if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
        return Err(InferenceError::config(path, "betas must lie in [0, 1)"));
    }
    Ok(betas)
}

/// `numpy.linspace(start, stop, n)`.
fn linspace(start: f64, stop: f64, n: usize) -> Vec<f64> {
    match n {
        0 => Vec::new(),
        1 => vec![start],
        _ => {
            let delta = (stop - start) / (n - 1) as f64;
            (0..n).map(|i| start + i as f64 * delta).collect()
        }
    }
}

/// `numpy.interp(x, arange(len(values)), values)` for `x` within range.
fn interp(x: f64, values: &[f64]) -> f64 {
    let last = values.len() - 1;
    if x <= 0.0 {
        return values[0];
    }
    if x >= last as f64 {
        return values[last];
    }
    let low = x.floor() as usize;
    let frac = x - low as f64;
    values[low] + frac * (values[low + 1] - values[low])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> SchedulerJson {
        serde_json::from_str(json).expect("parses")
    }

    const SD15: &str = r#"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
        "beta_start": 0.00085, "num_train_timesteps": 1000, "set_alpha_to_one": false,
        "skip_prk_steps": true, "steps_offset": 1, "trained_betas": null, "clip_sample": false}"#;

    #[test]
    fn ddim_leading_timesteps_match_diffusers() {
        let s = Scheduler::new(SchedulerKind::Ddim, &config(SD15), 4, Path::new("s.json"))
            .expect("valid");
        assert_eq!(s.timesteps(), &[751.0, 501.0, 251.0, 1.0]);
        assert_eq!(s.init_noise_sigma(), 1.0);
    }

    #[test]
    fn euler_linspace_sigmas_match_diffusers() {
        let s = Scheduler::new(
            SchedulerKind::EulerAncestral,
            &config(SD15),
            4,
            Path::new("s.json"),
        )
        .expect("valid");
        assert_eq!(s.timesteps(), &[999.0, 666.0, 333.0, 0.0]);
        // diffusers: EulerAncestralDiscreteScheduler(SD 1.5 config).set_timesteps(4).sigmas
        let expected = [14.6146, 2.9183, 0.9324, 0.0292, 0.0];
        for (got, want) in s.sigmas.iter().zip(expected) {
            assert!((got - want).abs() < 1e-3, "{:?}", s.sigmas);
        }
        assert!((s.init_noise_sigma() - 14.6146).abs() < 1e-3);
    }

    #[test]
    fn trailing_spacing() {
        let json = SD15.replace(
            "\"steps_offset\": 1",
            "\"steps_offset\": 0, \"timestep_spacing\": \"trailing\"",
        );
        let s = Scheduler::new(SchedulerKind::Ddim, &config(&json), 4, Path::new("s.json"))
            .expect("valid");
        assert_eq!(s.timesteps(), &[999.0, 749.0, 499.0, 249.0]);
    }

    #[test]
    fn unsupported_values_are_refused() {
        let json = SD15.replace("scaled_linear", "exotic");
        let error = Scheduler::new(SchedulerKind::Ddpm, &config(&json), 4, Path::new("s.json"))
            .expect_err("bad schedule");
        assert!(
            error.to_string().contains("beta_schedule \"exotic\""),
            "{error}"
        );
        let error = Scheduler::new(SchedulerKind::Ddim, &config(SD15), 0, Path::new("s.json"))
            .expect_err("zero steps");
        assert!(error.to_string().contains("0 steps"), "{error}");
    }

    #[test]
    fn ancestral_steps_require_noise() {
        let s = Scheduler::new(SchedulerKind::Ddpm, &config(SD15), 2, Path::new("s.json"))
            .expect("valid");
        let x = Tensor::zeros(
            (1, 4, 2, 2),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        )
        .expect("tensor");
        assert!(s.step(&x, 0, &x, None).is_err());
        assert!(s.step(&x, 0, &x, Some(&x)).is_ok());
    }
}
