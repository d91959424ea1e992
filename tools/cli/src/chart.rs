//! The report's chart: cost and p95 latency per task over time, as a PNG. Two panels (cost on
//! top, p95 latency below), one coloured line per task, time along the bottom, labels drawn with
//! an 8x8 bitmap font: no font files, no plotting stack.

use font8x8::{UnicodeFonts, BASIC_FONTS};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

const W: usize = 960;
const H: usize = 640;
const LEFT: usize = 90;
const RIGHT: usize = 200;
const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            px: vec![255; W * H * 3],
        }
    }

    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if (0..W as i64).contains(&x) && (0..H as i64).contains(&y) {
            let i = (y as usize * W + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], thick: i64) {
        // Bresenham, thickened by a small square brush.
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for ox in 0..thick {
                for oy in 0..thick {
                    self.set(x + ox, y + oy, c);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn rect(&mut self, x: i64, y: i64, w: i64, h: i64, c: [u8; 3]) {
        for yy in y..y + h {
            for xx in x..x + w {
                self.set(xx, yy, c);
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (i, ch) in s.chars().enumerate() {
            let glyph = BASIC_FONTS
                .get(ch)
                .or_else(|| BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.set(x + i as i64 * 8 + col, y + row as i64, c);
                    }
                }
            }
        }
    }
}

/// A compact number for axis labels: `0.0123`, `12.3`, `4.5k`.
fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Rows of `t`, `task`, `cost_usd`, `p95_ms` (the report's over-time query) as a PNG.
pub fn render(rows: &[Map<String, Value>]) -> Result<Vec<u8>, String> {
    let times: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            r.get("t")
                .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut series: BTreeMap<String, BTreeMap<usize, (f64, f64)>> = BTreeMap::new();
    for r in rows {
        let t = r
            .get("t")
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_string))
            .unwrap_or_default();
        let Some(ti) = times.iter().position(|x| *x == t) else {
            continue;
        };
        let task = match r.get("task").and_then(Value::as_str) {
            Some("") | None => "(none)".to_string(),
            Some(s) => s.to_string(),
        };
        let num = |k: &str| {
            r.get(k)
                .and_then(Value::as_f64)
                .filter(|v| v.is_finite())
                .unwrap_or(0.0)
        };
        series
            .entry(task)
            .or_default()
            .insert(ti, (num("cost_usd"), num("p95_ms")));
    }
    let mut c = Canvas::new();
    let ink = [40, 40, 40];
    let grid = [225, 225, 225];
    c.text(
        LEFT as i64,
        12,
        "taskrouter: cost and p95 latency per task",
        ink,
    );
    let plot_w = (W - LEFT - RIGHT) as i64;
    let panels = [
        ("cost per hour (USD)", 0usize, 40i64),
        ("p95 latency (ms)", 1, 340),
    ];
    let panel_h = 240i64;
    for (title, which, top) in panels {
        let max = series
            .values()
            .flat_map(|s| s.values().map(|v| if which == 0 { v.0 } else { v.1 }))
            .fold(0.0f64, f64::max)
            .max(f64::MIN_POSITIVE);
        c.text(LEFT as i64, top - 14, title, ink);
        for k in 0..=4 {
            let y = top + panel_h - panel_h * k / 4;
            c.line((LEFT as i64, y), (LEFT as i64 + plot_w, y), grid, 1);
            c.text(4, y - 4, &short(max * k as f64 / 4.0), ink);
        }
        c.line((LEFT as i64, top), (LEFT as i64, top + panel_h), ink, 1);
        c.line(
            (LEFT as i64, top + panel_h),
            (LEFT as i64 + plot_w, top + panel_h),
            ink,
            1,
        );
        let x_of = |i: usize| {
            LEFT as i64
                + if times.len() > 1 {
                    plot_w * i as i64 / (times.len() as i64 - 1)
                } else {
                    plot_w / 2
                }
        };
        for (si, points) in series.values().enumerate() {
            let color = PALETTE[si % PALETTE.len()];
            let mut prev: Option<(i64, i64)> = None;
            for (&ti, v) in points {
                let val = if which == 0 { v.0 } else { v.1 };
                let p = (
                    x_of(ti),
                    top + panel_h - ((val / max) * panel_h as f64).round() as i64,
                );
                if let Some(q) = prev {
                    c.line(q, p, color, 2);
                }
                c.rect(p.0 - 2, p.1 - 2, 5, 5, color);
                prev = Some(p);
            }
        }
        if let (Some(first), Some(last)) = (times.first(), times.last()) {
            c.text(
                LEFT as i64,
                top + panel_h + 8,
                &first.chars().take(16).collect::<String>(),
                ink,
            );
            let label: String = last.chars().take(16).collect();
            c.text(
                LEFT as i64 + plot_w - 8 * label.chars().count() as i64,
                top + panel_h + 8,
                &label,
                ink,
            );
        }
    }
    let legend_x = (W - RIGHT + 16) as i64;
    c.text(legend_x, 40, "tasks", ink);
    for (si, name) in series.keys().enumerate() {
        let y = 60 + 16 * si as i64;
        c.rect(legend_x, y, 10, 8, PALETTE[si % PALETTE.len()]);
        c.text(
            legend_x + 16,
            y,
            &name.chars().take(20).collect::<String>(),
            ink,
        );
    }
    if series.is_empty() {
        c.text(LEFT as i64 + 20, 150, "no data in this period", ink);
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, W as u32, H as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
        writer
            .write_image_data(&c.px)
            .map_err(|e| format!("PNG: {e}"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn draws_a_png_with_one_colour_per_task() {
        let rows: Vec<Map<String, Value>> = [
            json!({"t": "2026-11-28 10:00:00", "task": "faq", "cost_usd": 0.5, "p95_ms": 900}),
            json!({"t": "2026-11-28 11:00:00", "task": "faq", "cost_usd": 0.7, "p95_ms": 850}),
            json!({"t": "2026-11-28 10:00:00", "task": "code", "cost_usd": 2.0, "p95_ms": 4000}),
            json!({"t": "2026-11-28 11:00:00", "task": "", "cost_usd": 0.1, "p95_ms": 300}),
        ]
        .iter()
        .filter_map(|v| v.as_object().cloned())
        .collect();
        let png = render(&rows).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!(
            (reader.info().width, reader.info().height),
            (W as u32, H as u32)
        );
        for color in &PALETTE[..3] {
            assert!(buf.chunks(3).any(|p| p == color), "a line in {color:?}");
        }
        assert!(render(&[]).is_ok());
    }
}
