//! Real chart numbers: matplotlib's `Stocks.csv` (monthly closes of ten tickers, 1990-2022),
//! reduced to one value per ticker and year (the first close of the year).

use std::path::Path;

/// One ticker's yearly series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub ticker: String,
    /// `(year, first close of that year)`, ascending by year, no gaps in the rows it has.
    pub years: Vec<(i32, f64)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stocks {
    pub series: Vec<Series>,
}

impl Stocks {
    /// Reads `Stocks.csv`: `#` comment lines, a `Date,T1,T2,...` header, then `YYYY-MM-DD,v1,...`
    /// rows where a value may be empty.
    pub fn load(path: &Path) -> std::io::Result<Stocks> {
        let text = std::fs::read_to_string(path)?;
        Stocks::parse(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }

    pub fn parse(text: &str) -> Result<Stocks, String> {
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let header = lines.next().ok_or("no header line")?;
        let tickers: Vec<String> = header
            .split(',')
            .skip(1)
            .map(|s| s.trim().to_string())
            .collect();
        if tickers.is_empty() {
            return Err("header names no tickers".into());
        }
        let mut series: Vec<Series> = tickers
            .iter()
            .map(|t| Series {
                ticker: t.clone(),
                years: Vec::new(),
            })
            .collect();
        for (n, line) in lines.enumerate() {
            let mut cells = line.split(',');
            let date = cells.next().unwrap_or("");
            let year: i32 = date
                .get(..4)
                .and_then(|y| y.parse().ok())
                .ok_or_else(|| format!("data row {}: bad date {date:?}", n + 1))?;
            for (s, cell) in series.iter_mut().zip(cells) {
                let cell = cell.trim();
                if cell.is_empty() {
                    continue;
                }
                let v: f64 = cell
                    .parse()
                    .map_err(|_| format!("data row {}: bad value {cell:?}", n + 1))?;
                if !v.is_finite() || v <= 0.0 {
                    continue;
                }
                // Rows are in date order, so the first value seen in a year is that year's first close.
                if s.years.last().is_none_or(|&(y, _)| y < year) {
                    s.years.push((year, v));
                }
            }
        }
        series.retain(|s| s.years.len() >= 4);
        if series.is_empty() {
            return Err("no ticker has four or more years of data".into());
        }
        Ok(Stocks { series })
    }
}
