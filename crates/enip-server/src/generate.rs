//! Value generators: `--generate 'SCADA[0]=ramp 0..1000 every 1s'` makes a tag element
//! move by itself, so a fleet of simulators looks like a live plant.
//!
//! ```text
//! ramp A..B every Ns          A, A+1, ... B, A, ... one step every N seconds
//! sine C +/- A period Ps      C + A·sin(2πt/P)
//! random A..B every Ns        a uniform draw in A..B every N seconds
//! square A..B period Ps       A for the first half of each period, B for the second
//! ```
//!
//! Durations take `ms`, `s`, `m` or `h`. Errors point at the offending character.

use std::f64::consts::TAU;

use enip_device::Literal;

/// A generator expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at character {offset} of `{text}`")]
pub struct GenError {
    pub text: String,
    /// 0-based byte offset of the offending token.
    pub offset: usize,
    pub message: String,
}

impl GenError {
    /// The text with a caret under the offending character.
    pub fn pointer(&self) -> String {
        format!("{}\n{}^", self.text, " ".repeat(self.offset))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Generator {
    Ramp {
        from: i64,
        to: i64,
        every: f64,
    },
    Sine {
        center: f64,
        amplitude: f64,
        period: f64,
    },
    Random {
        from: f64,
        to: f64,
        every: f64,
    },
    Square {
        low: f64,
        high: f64,
        period: f64,
    },
}

/// Whitespace-separated tokens with their offsets.
fn tokens(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s, text.get(s..i).unwrap_or_default()));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, text.get(s..).unwrap_or_default()));
    }
    out
}

impl Generator {
    pub fn parse(text: &str) -> Result<Self, GenError> {
        let toks = tokens(text);
        let err = |offset: usize, message: String| GenError {
            text: text.to_owned(),
            offset,
            message,
        };
        let end = text.len();
        let at = |i: usize| toks.get(i).copied().unwrap_or((end, ""));
        let word = |i: usize, want: &str| -> Result<(), GenError> {
            let (o, t) = at(i);
            if t.eq_ignore_ascii_case(want) {
                Ok(())
            } else {
                Err(err(o, format!("expected `{want}`, found {}", shown(t))))
            }
        };
        let num = |i: usize| -> Result<f64, GenError> {
            let (o, t) = at(i);
            t.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| err(o, format!("expected a number, found {}", shown(t))))
        };
        let range = |i: usize| -> Result<(f64, f64), GenError> {
            let (o, t) = at(i);
            let (a, b) = t
                .split_once("..")
                .ok_or_else(|| err(o, format!("expected a range A..B, found {}", shown(t))))?;
            let parse = |s: &str, off: usize| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| err(off, format!("expected a number, found {}", shown(s))))
            };
            Ok((parse(a, o)?, parse(b, o + a.len() + 2)?))
        };
        let duration = |i: usize| -> Result<f64, GenError> {
            let (o, t) = at(i);
            let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
            let (n, unit) = t.split_at(split);
            let scale = match unit {
                "ms" => 0.001,
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => {
                    return Err(err(
                        o + split,
                        format!(
                            "expected a duration such as 500ms, 1s, 5m, found {}",
                            shown(t)
                        ),
                    ))
                }
            };
            let v = n
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| {
                    err(
                        o,
                        format!("expected a positive duration, found {}", shown(t)),
                    )
                })?;
            Ok(v * scale)
        };
        let done = |i: usize| -> Result<(), GenError> {
            match toks.get(i) {
                None => Ok(()),
                Some((o, t)) => Err(err(*o, format!("unexpected `{t}` after the expression"))),
            }
        };
        let (o, kind) = at(0);
        let g = match kind.to_ascii_lowercase().as_str() {
            "ramp" => {
                let (a, b) = range(1)?;
                word(2, "every")?;
                let every = duration(3)?;
                done(4)?;
                if a.fract() != 0.0 || b.fract() != 0.0 || a > b {
                    return Err(err(
                        at(1).0,
                        "a ramp runs between whole numbers, low..high".into(),
                    ));
                }
                Self::Ramp {
                    from: a as i64,
                    to: b as i64,
                    every,
                }
            }
            "sine" => {
                let center = num(1)?;
                word(2, "+/-")?;
                let amplitude = num(3)?;
                word(4, "period")?;
                let period = duration(5)?;
                done(6)?;
                Self::Sine {
                    center,
                    amplitude,
                    period,
                }
            }
            "random" => {
                let (from, to) = range(1)?;
                word(2, "every")?;
                let every = duration(3)?;
                done(4)?;
                if from > to {
                    return Err(err(at(1).0, "the range runs backwards".into()));
                }
                Self::Random { from, to, every }
            }
            "square" => {
                let (low, high) = range(1)?;
                word(2, "period")?;
                let period = duration(3)?;
                done(4)?;
                Self::Square { low, high, period }
            }
            _ => {
                return Err(err(
                    o,
                    format!("unknown generator `{kind}` (ramp, sine, random or square)"),
                ))
            }
        };
        Ok(g)
    }

    /// The value `t` seconds after the start.
    pub fn value_at(&self, t: f64) -> Literal {
        match *self {
            Self::Ramp { from, to, every } => {
                let steps = (t / every).floor() as i64;
                let span = to - from + 1;
                Literal::Int((from + steps.rem_euclid(span.max(1))).into())
            }
            Self::Sine {
                center,
                amplitude,
                period,
            } => Literal::Float(center + amplitude * (TAU * t / period).sin()),
            Self::Random { from, to, every } => {
                let step = (t / every).floor() as u64;
                Literal::Float(from + (to - from) * unit_hash(step))
            }
            Self::Square { low, high, period } => {
                let phase = (t / period).fract();
                Literal::Float(if phase < 0.5 { low } else { high })
            }
        }
    }

    /// How often the value changes enough to be worth storing.
    pub fn cadence(&self) -> f64 {
        match *self {
            Self::Ramp { every, .. } | Self::Random { every, .. } => every,
            Self::Sine { period, .. } => (period / 100.0).max(0.05),
            Self::Square { period, .. } => period / 2.0,
        }
    }
}

/// A token as an error shows it.
fn shown(t: &str) -> String {
    if t.is_empty() {
        "the end".into()
    } else {
        format!("`{t}`")
    }
}

/// A deterministic draw in [0, 1) for step `n` (splitmix64), so a replay of the same
/// times gives the same values.
fn unit_hash(n: u64) -> f64 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// `SCADA[3]=ramp 0..10 every 1s`: a tag, an element index, a generator.
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub tag: String,
    pub index: usize,
    pub generator: Generator,
}

impl Binding {
    /// Parse `TAG[=|:]EXPR` where TAG may end in `[i]`.
    pub fn parse(text: &str) -> Result<Self, GenError> {
        let (target, expr) = text.split_once('=').ok_or_else(|| GenError {
            text: text.to_owned(),
            offset: text.len(),
            message: "expected TAG=EXPRESSION, e.g. SCADA[0]=ramp 0..100 every 1s".into(),
        })?;
        let (tag, index) = split_index(target.trim()).ok_or_else(|| GenError {
            text: text.to_owned(),
            offset: 0,
            message: format!("bad target `{}`: expected Tag or Tag[index]", target.trim()),
        })?;
        let generator = Generator::parse(expr.trim()).map_err(|e| GenError {
            offset: e.offset + (expr.len() - expr.trim_start().len()) + target.len() + 1,
            text: text.to_owned(),
            message: e.message,
        })?;
        Ok(Self {
            tag,
            index,
            generator,
        })
    }
}

/// `Tag[3]` → (`Tag`, 3); `Tag` → (`Tag`, 0).
pub fn split_index(target: &str) -> Option<(String, usize)> {
    match target.split_once('[') {
        Some((tag, rest)) => {
            let i = rest.strip_suffix(']')?.trim().parse().ok()?;
            (!tag.is_empty()).then(|| (tag.to_owned(), i))
        }
        None => (!target.is_empty()).then(|| (target.to_owned(), 0)),
    }
}

/// Drive `bindings` into the controller until the task is dropped. Each value is set
/// when its generator's cadence says it may have changed; a value that does not fit its
/// tag is reported once.
pub async fn run(ctrl: crate::Shared, bindings: Vec<Binding>) {
    if bindings.is_empty() {
        return;
    }
    let tick = bindings
        .iter()
        .map(|b| b.generator.cadence())
        .fold(1.0f64, f64::min)
        .clamp(0.01, 1.0);
    let start = tokio::time::Instant::now();
    let mut interval = tokio::time::interval(std::time::Duration::from_secs_f64(tick));
    let mut reported = vec![false; bindings.len()];
    loop {
        interval.tick().await;
        let t = start.elapsed().as_secs_f64();
        let mut c = crate::lock(&ctrl);
        for (b, told) in bindings.iter().zip(reported.iter_mut()) {
            let mut v = b.generator.value_at(t);
            // A sine on an INT tag: whole numbers.
            let integer = c
                .tags
                .find(&b.tag)
                .and_then(|id| c.tags.get(id))
                .is_some_and(
                    |t| matches!(t.elem, enip_device::ElementType::Atomic(d) if d.is_integer()),
                );
            if let (true, Literal::Float(x)) = (integer, &v) {
                v = Literal::Int(x.round() as i128);
            }
            if let Err(e) = c.set_values(&b.tag, b.index, &[v]) {
                if !*told {
                    *told = true;
                    tracing::warn!(tag = %b.tag, "generator: {e}");
                }
            }
        }
    }
}
