//! What the host says about itself: CPU load and SoC temperature, for status events.

use std::fs;
use std::path::Path;

/// The 1-minute load average per CPU (1.0 = every core busy), from /proc/loadavg.
pub(super) fn cpu_load() -> Option<f64> {
    let text = fs::read_to_string("/proc/loadavg").ok()?;
    let load: f64 = text.split_whitespace().next()?.parse().ok()?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some((load / cpus as f64 * 100.0).round() / 100.0)
}

/// The SoC temperature in °C: the thermal zone named like the CPU/SoC, else the first one.
pub(super) fn soc_temp_c() -> Option<f64> {
    soc_temp_in(Path::new("/sys/class/thermal"))
}

fn soc_temp_in(root: &Path) -> Option<f64> {
    let mut zones: Vec<_> = fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("thermal_zone"))
        })
        .collect();
    zones.sort();
    let kind = |p: &Path| fs::read_to_string(p.join("type")).unwrap_or_default();
    let preferred = zones.iter().find(|p| {
        let k = kind(p).to_ascii_lowercase();
        k.contains("cpu") || k.contains("soc")
    });
    let zone = preferred.or(zones.first())?;
    let millis: f64 = fs::read_to_string(zone.join("temp"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((millis / 100.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soc_zone_is_preferred_and_read_in_degrees() {
        let root = std::env::temp_dir().join(format!("rtcam-thermal-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for (zone, kind, temp) in [
            ("thermal_zone0", "acpitz", "30000"),
            ("thermal_zone1", "cpu-thermal", "51234"),
        ] {
            fs::create_dir_all(root.join(zone)).unwrap();
            fs::write(root.join(zone).join("type"), kind).unwrap();
            fs::write(root.join(zone).join("temp"), temp).unwrap();
        }
        assert_eq!(soc_temp_in(&root), Some(51.2));
        fs::remove_dir_all(root.join("thermal_zone1")).unwrap();
        assert_eq!(soc_temp_in(&root), Some(30.0), "else the first zone");
        let _ = fs::remove_dir_all(&root);
        assert_eq!(soc_temp_in(&root), None, "no thermal zones, no temperature");
    }

    #[test]
    fn load_is_a_fraction_of_the_cpus() {
        // /proc/loadavg exists on Linux; the value is whatever the machine is doing.
        let load = cpu_load().expect("/proc/loadavg");
        assert!(load >= 0.0);
    }
}
