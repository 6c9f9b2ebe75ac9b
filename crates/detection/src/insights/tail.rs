//! The numbers behind a minute's threshold: the normal tail a sensitivity in sigmas stands for,
//! and the least count whose upper tail under a negative binomial distribution (a Poisson one
//! when the variance is no larger than the mean) is at most that probability.
//!
//! Each is computed once per series, day and hour (`baseline.rs`), never per minute, so exact
//! sums are affordable; but a busy API's mean can be thousands a minute, so the tail is bounded
//! from one term instead of summed term by term (see `count_threshold`).

/// P(Z ≥ sigma) for a standard normal Z.
pub(crate) fn normal_upper_tail(sigma: f64) -> f64 {
    0.5 * complementary_error_function(sigma / std::f64::consts::SQRT_2)
}

/// The least count `k` ≥ 1 with P(X ≥ k) ≤ `tail`, for X negative binomial with mean `mean` and
/// variance `dispersion × mean` (Poisson when `dispersion` ≤ 1).
///
/// Beyond the mode the ratio of successive probabilities, P(k+1)/P(k), is below 1, so the
/// tail from `k` on is at most P(k) / (1 − the largest ratio from `k` on): a geometric bound.
/// The threshold is the least `k` whose bound is at most `tail`, found by doubling then
/// bisection — a few dozen log-gamma evaluations whatever the mean. The bound errs only
/// upwards, so the threshold is never below the exact quantile (in practice equal or one more).
pub(crate) fn count_threshold(mean: f64, dispersion: f64, tail: f64) -> u64 {
    let mean = if mean.is_finite() && mean > 1e-12 {
        mean
    } else {
        1e-12
    };
    let distribution = CountDistribution::new(mean, dispersion);
    let log_tail = tail.max(f64::MIN_POSITIVE).ln();
    let first = distribution.first_decreasing_count();
    let within = |k: f64| distribution.log_upper_tail_bound(k) <= log_tail;
    if within(first) {
        return (first as u64).max(1);
    }
    // Doubling: the bound falls at least geometrically beyond the mode.
    let mut below = first;
    let mut step = mean.sqrt().ceil().max(1.0);
    let mut above = first + step;
    while !within(above) {
        below = above;
        step *= 2.0;
        above = first + step;
        if above > 1e15 {
            return u64::MAX;
        }
    }
    // Bisection on whole counts (all three are whole): `below` fails, `above` holds.
    while above - below > 1.0 {
        let middle = below + ((above - below) / 2.0).floor();
        if within(middle) {
            above = middle;
        } else {
            below = middle;
        }
    }
    (above as u64).max(1)
}

/// Poisson, or negative binomial with `r` successes of probability `p` (mean r(1−p)/p,
/// variance mean/p).
enum CountDistribution {
    Poisson { mean: f64 },
    NegativeBinomial { r: f64, p: f64 },
}

impl CountDistribution {
    fn new(mean: f64, dispersion: f64) -> CountDistribution {
        // A dispersion this close to 1 makes r enormous and the terms ill-conditioned; the
        // distribution is then Poisson to any precision that matters.
        if !dispersion.is_finite() || dispersion <= 1.0 + 1e-6 {
            CountDistribution::Poisson { mean }
        } else {
            CountDistribution::NegativeBinomial {
                r: mean / (dispersion - 1.0),
                p: 1.0 / dispersion,
            }
        }
    }

    /// The first count from which the probabilities only decrease.
    fn first_decreasing_count(&self) -> f64 {
        match *self {
            CountDistribution::Poisson { mean } => mean.floor(),
            CountDistribution::NegativeBinomial { r, p } => {
                // P(k+1)/P(k) = (k+r)(1−p)/(k+1) < 1 ⟺ k > (r(1−p) − 1)/p.
                ((r * (1.0 - p) - 1.0) / p).floor().max(-1.0) + 1.0
            }
        }
    }

    fn log_probability(&self, k: f64) -> f64 {
        match *self {
            CountDistribution::Poisson { mean } => -mean + k * mean.ln() - log_gamma(k + 1.0),
            CountDistribution::NegativeBinomial { r, p } => {
                log_gamma(k + r) - log_gamma(r) - log_gamma(k + 1.0)
                    + r * p.ln()
                    + k * (1.0 - p).ln()
            }
        }
    }

    /// The largest of the ratios P(j+1)/P(j) for j ≥ k (k at or beyond the mode).
    fn largest_ratio_from(&self, k: f64) -> f64 {
        match *self {
            CountDistribution::Poisson { mean } => mean / (k + 1.0),
            // (k+r)/(k+1) falls with k when r ≥ 1 and rises towards 1 when r < 1.
            CountDistribution::NegativeBinomial { r, p } if r >= 1.0 => {
                (k + r) * (1.0 - p) / (k + 1.0)
            }
            CountDistribution::NegativeBinomial { p, .. } => 1.0 - p,
        }
    }

    /// ln of P(k) / (1 − the largest ratio from k on), which bounds P(X ≥ k) from above.
    fn log_upper_tail_bound(&self, k: f64) -> f64 {
        let ratio = self.largest_ratio_from(k);
        if ratio >= 1.0 {
            return 0.0;
        }
        self.log_probability(k) - (1.0 - ratio).ln()
    }
}

/// ln Γ(x) for x > 0: Lanczos' approximation (g = 7, nine coefficients), relative error about
/// 10⁻¹⁵; below ½ through the reflection formula.
pub(crate) fn log_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin().abs()).ln() - log_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (index, coefficient) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += coefficient / (x + index as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// erfc(x), with a fractional error below 1.2 × 10⁻⁷ everywhere (Numerical Recipes' `erfcc`,
/// a Chebyshev fit): ample for a tail probability that sets a count threshold.
fn complementary_error_function(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let polynomial = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * polynomial.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

#[cfg(test)]
mod tests {
    use super::{count_threshold, log_gamma, normal_upper_tail};

    fn poisson_upper_tail(mean: f64, k: u64) -> f64 {
        let mut term = (-mean).exp();
        let mut below = 0.0;
        for j in 0..k {
            below += term;
            term *= mean / (j as f64 + 1.0);
        }
        1.0 - below
    }

    #[test]
    fn log_gamma_matches_factorials() {
        let mut factorial: f64 = 1.0;
        for n in 1..30u32 {
            assert!(
                (log_gamma(f64::from(n)) - factorial.ln()).abs() < 1e-10,
                "{n}"
            );
            factorial *= f64::from(n);
        }
        assert!((log_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
    }

    #[test]
    fn normal_tails_are_the_known_values() {
        assert!((normal_upper_tail(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper_tail(1.0) - 0.158_655_25).abs() < 1e-7);
        assert!((normal_upper_tail(5.0) / 2.866_515_7e-7 - 1.0).abs() < 1e-5);
    }

    #[test]
    fn the_poisson_threshold_is_the_exact_quantile_or_one_above() {
        let tail = normal_upper_tail(5.0);
        for mean in [0.01, 0.3, 1.0, 2.0, 7.5, 30.0, 100.0] {
            let threshold = count_threshold(mean, 1.0, tail);
            let exact = (1..1_000)
                .find(|&k| poisson_upper_tail(mean, k) <= tail)
                .unwrap();
            assert!(
                threshold == exact || threshold == exact + 1,
                "mean {mean}: {threshold} vs exact {exact}"
            );
        }
    }

    #[test]
    fn a_geometric_distribution_has_its_closed_form_quantile() {
        // Mean 2, variance 6: r = 1, p = 1/3, P(X ≥ k) = (2/3)^k.
        let tail: f64 = 1e-6;
        let exact = (tail.ln() / (2.0f64 / 3.0).ln()).ceil() as u64;
        let threshold = count_threshold(2.0, 3.0, tail);
        assert!(
            threshold == exact || threshold == exact + 1,
            "{threshold} vs {exact}"
        );
    }

    #[test]
    fn busy_series_get_thresholds_near_the_normal_approximation() {
        let tail = normal_upper_tail(5.0);
        let threshold = count_threshold(10_000.0, 1.0, tail) as f64;
        assert!((10_480.0..10_560.0).contains(&threshold), "{threshold}");
        let dispersed = count_threshold(10_000.0, 4.0, tail) as f64;
        assert!((10_950.0..11_150.0).contains(&dispersed), "{dispersed}");
    }
}
