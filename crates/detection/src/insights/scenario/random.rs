//! The scenarios' random numbers: SplitMix64 and the few distributions the generator draws
//! from. orgtrail's own rather than a crate's, so a seed gives the same scenario in every
//! version (a library may change its algorithms between releases) and the crate stays free of
//! dependencies it would use only here.

use crate::insights::tail::log_gamma;

/// SplitMix64 (Steele, Lea and Flood): 64 bits of state, passes BigCrush, and any seed —
/// 0 included — is a good one.
#[derive(Clone, Debug)]
pub struct Random {
    state: u64,
}

impl Random {
    pub fn new(seed: u64) -> Random {
        Random { state: seed }
    }

    /// A generator for a named part of a scenario, independent of the others' draws.
    pub fn derived(seed: u64, stream: u64) -> Random {
        let mut mixer = Random::new(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Random::new(mixer.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in [low, high).
    pub fn uniform_in(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform among the integers of [low, high) (`low` when the range is empty).
    pub fn integer_in(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = (high - low) as u64;
        low + (self.next_u64() % span) as i64
    }

    /// A standard normal draw (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// A gamma draw of shape `shape` and mean 1 (Marsaglia and Tsang; shapes below 1 boosted).
    pub fn gamma_mean_one(&mut self, shape: f64) -> f64 {
        if !(shape.is_finite() && shape > 0.0) {
            return 1.0;
        }
        self.gamma(shape) / shape
    }

    /// A Poisson draw: by inversion for small means, by Hörmann's PTRS (transformed rejection)
    /// for the others.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if !(mean.is_finite() && mean > 0.0) {
            return 0;
        }
        if mean < 10.0 {
            let limit = (-mean).exp();
            let mut count = 0u64;
            let mut product = self.uniform();
            while product > limit {
                count += 1;
                product *= self.uniform();
            }
            return count;
        }
        let log_mean = mean.ln();
        let b = 0.931 + 2.53 * mean.sqrt();
        let a = -0.059 + 0.024_83 * b;
        let inverse_alpha = 1.1239 + 1.1328 / (b - 3.4);
        let v_r = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + mean + 0.43).floor();
            if us >= 0.07 && v <= v_r {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let accept = (v * inverse_alpha / (a / (us * us) + b)).ln();
            if accept <= -mean + k * log_mean - log_gamma(k + 1.0) {
                return k as u64;
            }
        }
    }

    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let boost = self.uniform().max(f64::MIN_POSITIVE).powf(1.0 / shape);
            return self.gamma(shape + 1.0) * boost;
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Random;

    fn mean_and_variance(draws: &[f64]) -> (f64, f64) {
        let n = draws.len() as f64;
        let mean = draws.iter().sum::<f64>() / n;
        let variance = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        (mean, variance)
    }

    #[test]
    fn poisson_draws_have_their_mean_and_variance() {
        let mut random = Random::new(7);
        for mean in [0.05, 3.0, 25.0, 400.0] {
            let draws: Vec<f64> = (0..40_000).map(|_| random.poisson(mean) as f64).collect();
            let (found_mean, found_variance) = mean_and_variance(&draws);
            assert!(
                (found_mean / mean - 1.0).abs() < 0.05,
                "{mean}: {found_mean}"
            );
            assert!(
                (found_variance / mean - 1.0).abs() < 0.08,
                "{mean}: {found_variance}"
            );
        }
    }

    #[test]
    fn gamma_draws_have_mean_one_and_variance_one_over_shape() {
        let mut random = Random::new(11);
        for shape in [0.5, 2.0, 8.0] {
            let draws: Vec<f64> = (0..40_000).map(|_| random.gamma_mean_one(shape)).collect();
            let (mean, variance) = mean_and_variance(&draws);
            assert!((mean - 1.0).abs() < 0.03, "{shape}: {mean}");
            assert!((variance * shape - 1.0).abs() < 0.1, "{shape}: {variance}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_draws() {
        let draws = |seed| {
            let mut random = Random::new(seed);
            (0..5).map(|_| random.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        assert_ne!(draws(3), draws(4));
    }
}
