//! The demo's closing summary: figures read back from what its steps printed (the tools'
//! own output is the record, so the summary cannot drift from what the user saw).

/// The number after `key` in `text` (thousands separators allowed), e.g. `"arena"` in
/// `"arena       30,559 bytes"`; the last occurrence wins.
pub fn number_after(text: &str, key: &str) -> Option<f64> {
    text.rmatch_indices(key).find_map(|(at, _)| {
        let rest = text[at + key.len()..].trim_start_matches([' ', ':']);
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
            .filter(|&c| c != ',')
            .collect();
        digits.trim_end_matches('.').parse().ok()
    })
}

/// What `alexnet eval` printed: top-1 and top-5 accuracy (%) and ms per image.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Eval {
    pub top1: f64,
    pub top5: f64,
    pub ms: f64,
}

/// Parses `alexnet eval`'s line `..., top-1 accuracy 83.64%, top-5 accuracy 99.76% (f32, 2 threads,
/// 7.40 ms per image, 135.1 images/s)`.
pub fn parse_eval(text: &str) -> Option<Eval> {
    let line = text.lines().rev().find(|l| l.contains("top-1 accuracy"))?;
    let ms_at = line.rfind(" ms per image")?;
    let ms = line[..ms_at].rsplit([' ', '(']).next()?.parse().ok()?;
    Some(Eval {
        top1: number_after(line, "top-1 accuracy")?,
        top5: number_after(line, "top-5 accuracy")?,
        ms,
    })
}

/// One firmware build's report from `tests/firmware.rs`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Device {
    pub int8_instructions: f64,
    pub f32_instructions: f64,
    pub conv_per_mac: f64,
    pub int8_identical: String,
    pub f32_identical: String,
    pub int8_correct: String,
    pub f32_correct: String,
    pub flash: f64,
    pub ram: f64,
    pub stack: f64,
}

/// The report of the build with `features` (e.g. `["dsp"]`) in the firmware test's output.
pub fn parse_device(text: &str, features: &str) -> Option<Device> {
    let header = format!("firmware report, features {features}");
    let start = text.find(&header)?;
    let block = &text[start..];
    let block = &block[..block[1..]
        .find("firmware report")
        .map_or(block.len(), |e| e + 1)];
    let fraction = |key: &str, which: &str| -> Option<String> {
        let line = block.lines().find(|l| l.contains(key))?;
        let after = &line[line.find(which)? + which.len()..];
        Some(after.split([',', ' ']).find(|s| !s.is_empty())?.to_string())
    };
    Some(Device {
        int8_instructions: number_after(block, "instructions per inference: int8")?,
        f32_instructions: number_after(block, "), f32")?,
        conv_per_mac: number_after(block, "convolutions alone: int8")?,
        int8_identical: fraction("bit-identical logits", "int8 ")?,
        f32_identical: fraction("bit-identical logits", "f32 ")?,
        int8_correct: fraction("accuracy on the", "int8 ")?,
        f32_correct: fraction("accuracy on the", "f32 ")?,
        flash: number_after(block, "flash")?,
        ram: number_after(block, "static RAM")?,
        stack: number_after(block, "stack peak")?,
    })
}

/// Everything the summary table shows.
pub struct Summary {
    pub eval_f32: Eval,
    pub eval_int8: Eval,
    pub blob_f32: u64,
    pub blob_int8: u64,
    pub arena_f32: f64,
    pub arena_int8: f64,
    pub generic: Device,
    pub dsp: Device,
    pub timings: Vec<(String, f64)>,
}

/// `12927` as `12,927`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Instructions at 168 MHz and one instruction per cycle, in ms (a Cortex-M4F's clock; real
/// cycles per instruction vary with memory wait states).
fn at_168_mhz(instructions: f64) -> f64 {
    instructions / 168e6 * 1e3
}

impl Summary {
    /// The table as Markdown.
    pub fn to_markdown(&self) -> String {
        let mb = |b: u64| format!("{:.2} MB", b as f64 / 1e6);
        let identical = |s: &str| {
            let same = s.split_once('/').is_some_and(|(a, b)| a == b);
            format!("{} ({s})", if same { "yes" } else { "NO" })
        };
        let (e32, e8, g, d) = (&self.eval_f32, &self.eval_int8, &self.generic, &self.dsp);
        let mut s = String::from("| the trained small net | f32 | int8 |\n|---|---:|---:|\n");
        let mut row = |what: &str, a: String, b: String| {
            s.push_str(&format!("| {what} | {a} | {b} |\n"));
        };
        row(
            "test accuracy, 10,000 Fashion-MNIST images (top-1 / top-5), through the core",
            format!("{:.2} % / {:.2} %", e32.top1, e32.top5),
            format!("{:.2} % / {:.2} %", e8.top1, e8.top5),
        );
        row(
            "model blob (int8: with the DSP kernel's prepacked weights)",
            mb(self.blob_f32),
            mb(self.blob_int8),
        );
        row(
            "activation arena (fused conv/pool chains)",
            format!("{} bytes", thousands(self.arena_f32)),
            format!("{} bytes", thousands(self.arena_int8)),
        );
        row(
            "time per image on this host (core, one thread)",
            format!("{:.2} ms", e32.ms),
            format!("{:.2} ms", e8.ms),
        );
        row(
            "Cortex-M4F (QEMU): instructions per image, generic kernels",
            format!("{:.1} M", g.f32_instructions / 1e6),
            format!("{:.1} M", g.int8_instructions / 1e6),
        );
        row(
            "Cortex-M4F (QEMU): instructions per image, `dsp` kernels",
            format!("{:.1} M", d.f32_instructions / 1e6),
            format!(
                "{:.1} M (convolutions {:.2} per MAC)",
                d.int8_instructions / 1e6,
                d.conv_per_mac
            ),
        );
        row(
            "time per image at 168 MHz, one instruction per cycle (`dsp` build)",
            format!("{:.0} ms", at_168_mhz(d.f32_instructions)),
            format!("{:.0} ms", at_168_mhz(d.int8_instructions)),
        );
        row(
            "device logits bit-identical with the host (generic build / `dsp` build)",
            format!(
                "{} / {}",
                identical(&g.f32_identical),
                identical(&d.f32_identical)
            ),
            format!(
                "{} / {}",
                identical(&g.int8_identical),
                identical(&d.int8_identical)
            ),
        );
        row(
            "correct on the device's embedded test images",
            d.f32_correct.clone(),
            d.int8_correct.clone(),
        );
        s.push_str(&format!(
            "\nFirmware (`dsp` build): flash {} bytes, static RAM {} bytes, stack peak {} bytes.\n",
            thousands(d.flash),
            thousands(d.ram),
            thousands(d.stack)
        ));
        s.push_str("\n| step | seconds |\n|---|---:|\n");
        for (title, secs) in &self.timings {
            let short: String = title.chars().take(90).collect();
            s.push_str(&format!("| {short} | {secs:.1} |\n"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_tools_own_lines() {
        let eval = "/r/micro.blob: 10000 IDX images, top-1 accuracy 83.64%, top-5 accuracy 99.76% (f32, 2 threads, 7.40 ms per image, 135.1 images/s)\n";
        assert_eq!(
            parse_eval(eval),
            Some(Eval {
                top1: 83.64,
                top5: 99.76,
                ms: 7.40
            })
        );
        assert_eq!(
            number_after("arena       30,559 bytes (largest", "arena"),
            Some(30559.0)
        );
        let fw = "\
firmware report, features [] (7.9 s under QEMU):
  flash 1746408 bytes, static RAM 122072 bytes, stack peak 28268 bytes
  instructions per inference: int8 129569389 (20.26 per MAC), f32 126073135 (19.71 per MAC); SysTick: 40
  bit-identical logits: int8 32/32, f32 32/32
  accuracy on the 32 embedded test images: int8 3/32, f32 3/32
  convolutions alone: int8 19.31 instructions per MAC, f32 17.65
firmware report, features [\"dsp\"] (5.9 s under QEMU):
  flash 1757788 bytes, static RAM 122072 bytes, stack peak 50544 bytes
  instructions per inference: int8 14870778 (2.33 per MAC), f32 126073135 (19.71 per MAC); SysTick: 40
  bit-identical logits: int8 31/32, f32 32/32
  accuracy on the 32 embedded test images: int8 27/32, f32 26/32
  convolutions alone: int8 0.99 instructions per MAC, f32 17.65
";
        let dsp = parse_device(fw, "[\"dsp\"]").unwrap();
        assert_eq!(dsp.int8_instructions, 14870778.0);
        assert_eq!(dsp.f32_instructions, 126073135.0);
        assert_eq!(dsp.conv_per_mac, 0.99);
        assert_eq!(
            (dsp.int8_identical.as_str(), dsp.f32_identical.as_str()),
            ("31/32", "32/32")
        );
        assert_eq!(
            (dsp.int8_correct.as_str(), dsp.f32_correct.as_str()),
            ("27/32", "26/32")
        );
        assert_eq!((dsp.flash, dsp.stack), (1757788.0, 50544.0));
        let generic = parse_device(fw, "[]").unwrap();
        assert_eq!(generic.int8_instructions, 129569389.0);
        assert_eq!(generic.conv_per_mac, 19.31);
    }

    #[test]
    fn a_mismatch_is_shown_as_such() {
        let device = Device {
            int8_identical: "31/32".into(),
            f32_identical: "32/32".into(),
            ..Device::default()
        };
        let eval = Eval {
            top1: 1.0,
            top5: 2.0,
            ms: 3.0,
        };
        let s = Summary {
            eval_f32: eval,
            eval_int8: eval,
            blob_f32: 1,
            blob_int8: 1,
            arena_f32: 1.0,
            arena_int8: 1.0,
            generic: device.clone(),
            dsp: device,
            timings: vec![],
        };
        let table = s.to_markdown();
        assert!(table.contains("NO (31/32)"), "{table}");
        assert!(table.contains("yes (32/32)"), "{table}");
        assert_eq!(thousands(1757660.0), "1,757,660");
        assert_eq!(thousands(12927.0), "12,927");
        assert_eq!(thousands(63.0), "63");
    }
}
