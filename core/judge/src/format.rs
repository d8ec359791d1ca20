//! Numbers as explanations print them: four significant digits, signs where a shift is meant,
//! scientific notation only for very large or very small magnitudes.

/// `v` with about four significant digits.
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `v` with an explicit sign.
pub fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v))
    } else if v == 0.0 {
        "0".into()
    } else {
        num(v)
    }
}

/// A p-value: four significant digits, `< 1e-16` for zero.
pub fn p(v: f64) -> String {
    if v == 0.0 {
        return "< 1e-16".into();
    }
    if v < 1e-4 {
        return format!("{v:.2e}");
    }
    num(v)
}

/// A confidence (0.98) as a percentage ("98 %").
pub fn percent(v: f64) -> String {
    format!("{} %", num(v * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.41), "0.41");
        assert_eq!(num(0.123456), "0.1235");
        assert_eq!(num(1234.5678), "1235");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(1e-7), "1.000e-7");
        assert_eq!(signed(0.07), "+0.07");
        assert_eq!(signed(-0.5), "-0.5");
        assert_eq!(p(0.0012), "0.0012");
        assert_eq!(p(3.2e-7), "3.20e-7");
        assert_eq!(percent(0.98), "98 %");
    }
}
