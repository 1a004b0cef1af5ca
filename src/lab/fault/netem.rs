//! `plexnet netem NODE IF`: delay, jitter, loss and a rate limit on one
//! interface of a node, as containerlab's `tools netem set` gives them:
//! tc's netem qdisc (tc-netem(8)) at the root of the interface, replaced
//! by each call; `--clear` removes it. Without options it shows the
//! interface's root qdisc.
//!
//! netem is a kernel option (CONFIG_NET_SCH_NETEM, module `sch_netem`);
//! `plexnet doctor` probes it (scripts/host-needs.list, `kernel netem`).
//! A kernel without it can still limit the rate: `--rate` alone then uses
//! the token bucket filter (tc-tbf(8)); delay, jitter and loss are refused
//! with the reason.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::record::{Faults, Shaped};
use super::Found;
use crate::lab::netlink::NsLinks;
use crate::lab::process;

/// What to set on the interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shape {
    /// Added delay, in milliseconds.
    pub delay_ms: Option<f64>,
    /// Random variation of the delay (±), in milliseconds; needs a delay.
    pub jitter_ms: Option<f64>,
    /// Random loss, in percent.
    pub loss_pct: Option<f64>,
    /// A rate in tc's syntax: `10mbit`, `500kbit`, `1gbit`, `100kbps`.
    pub rate: Option<String>,
}

impl Shape {
    pub fn is_empty(&self) -> bool {
        *self == Shape::default()
    }

    /// Checks the values; the message names the option.
    pub fn validate(&self) -> Result<()> {
        let ms = |name: &str, v: Option<f64>| -> Result<()> {
            match v {
                Some(x) if !(0.0..=60_000.0).contains(&x) => {
                    bail!("--{name} {x}: must be between 0 and 60000 ms")
                }
                _ => Ok(()),
            }
        };
        ms("delay", self.delay_ms)?;
        ms("jitter", self.jitter_ms)?;
        if self.jitter_ms.is_some() && self.delay_ms.is_none() {
            bail!("--jitter varies a delay: give --delay too");
        }
        if let Some(l) = self.loss_pct {
            if !(0.0..=100.0).contains(&l) {
                bail!("--loss {l}: a percentage between 0 and 100");
            }
        }
        if let Some(r) = &self.rate {
            check_rate(r)?;
        }
        Ok(())
    }

    /// netem's arguments (tc-netem(8)).
    pub fn netem_args(&self) -> Vec<String> {
        let mut a = vec!["netem".to_string()];
        if let Some(d) = self.delay_ms {
            a.extend(["delay".into(), format!("{d}ms")]);
            if let Some(j) = self.jitter_ms {
                a.push(format!("{j}ms"));
            }
        }
        if let Some(l) = self.loss_pct {
            a.extend(["loss".into(), format!("{l}%")]);
        }
        if let Some(r) = &self.rate {
            a.extend(["rate".into(), r.clone()]);
        }
        a
    }

    /// The token bucket filter for a rate alone (tc-tbf(8)): a burst of
    /// 32 KiB, packets queued at most 200 ms.
    fn tbf_args(&self) -> Option<Vec<String>> {
        let only_rate = Shape {
            rate: self.rate.clone(),
            ..Shape::default()
        };
        (*self == only_rate && self.rate.is_some()).then(|| {
            [
                "tbf",
                "rate",
                self.rate.as_deref().unwrap_or(""),
                "burst",
                "32kb",
                "latency",
                "200ms",
            ]
            .map(String::from)
            .to_vec()
        })
    }
}

/// `10mbit`, `1.5gbit`, `500kbps`: a number and one of tc's rate units.
fn check_rate(r: &str) -> Result<()> {
    const UNITS: [&str; 8] = ["gbit", "mbit", "kbit", "bit", "gbps", "mbps", "kbps", "bps"];
    let unit = UNITS.iter().find(|u| r.to_ascii_lowercase().ends_with(*u));
    let number = unit.map(|u| &r[..r.len() - u.len()]);
    match number.map(str::parse::<f64>) {
        Some(Ok(n)) if n > 0.0 => Ok(()),
        _ => bail!(
            "--rate {r}: a positive number and a unit, e.g. 10mbit, 500kbit, 1gbit or 100kbps"
        ),
    }
}

/// What `plexnet netem` did or found.
#[derive(Debug, Clone, Serialize)]
pub struct NetemReport {
    pub node: String,
    pub iface: String,
    /// `set`, `cleared`, `unchanged` (nothing to clear) or `shown`.
    pub action: &'static str,
    /// The qdisc as given to tc, when one was set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qdisc: Option<String>,
    /// The interface's root qdisc as `tc -j qdisc show` reports it.
    pub current: serde_json::Value,
}

fn tc(found: &Found, args: &[String]) -> Result<std::process::Output> {
    let mut argv = vec!["tc"];
    argv.extend(args.iter().map(String::as_str));
    process::in_namespace(&found.node.namespace, &argv)?
        .output()
        .with_context(|| format!("running tc {} in {}", args.join(" "), found.node.namespace))
}

fn tc_ok(found: &Found, args: &[String]) -> Result<String> {
    let out = tc(found, args)?;
    if !out.status.success() {
        bail!(
            "tc {} in {} failed: {}",
            args.join(" "),
            found.node.namespace,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The interfaces of the node's namespace; an unknown one is an error
/// that lists them.
fn check_iface(found: &Found, iface: &str) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let names = rt.block_on(async { NsLinks::open(&found.node.namespace)?.link_names().await })?;
    if !names.iter().any(|n| n == iface) {
        bail!(
            "{} has no interface {iface}; its interfaces: {}",
            found.node.name,
            names.join(", ")
        );
    }
    Ok(())
}

fn current(found: &Found, iface: &str) -> Result<serde_json::Value> {
    let args = ["-j", "qdisc", "show", "dev", iface].map(String::from);
    let text = tc_ok(found, &args)?;
    serde_json::from_str(&text).with_context(|| format!("reading tc -j output: {text}"))
}

/// Sets, clears or shows the shaping of `iface` on `found`'s node.
pub fn apply(found: &Found, iface: &str, shape: &Shape, clear: bool) -> Result<NetemReport> {
    if clear && !shape.is_empty() {
        bail!("--clear removes what is set: give it alone, without --delay, --jitter, --loss or --rate");
    }
    shape.validate()?;
    check_iface(found, iface)?;
    let node = found.node.name.clone();
    let (action, qdisc) = if clear {
        (clear_root(found, iface)?, None)
    } else if shape.is_empty() {
        ("shown", None)
    } else {
        ("set", Some(set_root(found, iface, shape)?))
    };
    if action != "shown" {
        Faults::update(&found.run_dir, |f| {
            f.shaped
                .retain(|s| !(s.node.eq_ignore_ascii_case(&node) && s.iface == iface));
            if let Some(q) = &qdisc {
                f.shaped.push(Shaped {
                    node: node.clone(),
                    iface: iface.to_string(),
                    qdisc: q.clone(),
                });
            }
        })?;
    }
    Ok(NetemReport {
        node,
        iface: iface.to_string(),
        action,
        qdisc,
        current: current(found, iface)?,
    })
}

/// `tc qdisc replace dev IF root netem ...`, or tbf for a rate alone on
/// a kernel without netem. Returns the qdisc as given.
fn set_root(found: &Found, iface: &str, shape: &Shape) -> Result<String> {
    let root = ["qdisc", "replace", "dev", iface, "root"].map(String::from);
    let with = |q: &[String]| [root.to_vec(), q.to_vec()].concat();
    let netem = shape.netem_args();
    let out = tc(found, &with(&netem))?;
    if out.status.success() {
        return Ok(netem.join(" "));
    }
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if !err.contains("qdisc kind is unknown") {
        bail!(
            "tc qdisc replace dev {iface} root {} in {}: {err}",
            netem.join(" "),
            found.node.namespace
        );
    }
    let Some(tbf) = shape.tbf_args() else {
        bail!(
            "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM, module sch_netem; `sudo plexnet doctor` checks it): --delay, --jitter and --loss need it; --rate alone works (through tbf)"
        );
    };
    tc_ok(found, &with(&tbf))?;
    Ok(tbf.join(" "))
}

/// `tc qdisc del dev IF root`: `cleared`, or `unchanged` when only the
/// default qdisc was there.
fn clear_root(found: &Found, iface: &str) -> Result<&'static str> {
    let args = ["qdisc", "del", "dev", iface, "root"].map(String::from);
    let out = tc(found, &args)?;
    if out.status.success() {
        return Ok("cleared");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // The default qdisc cannot be deleted: nothing was set.
    if err.contains("Cannot delete qdisc with handle of zero") || err.contains("No such file") {
        return Ok("unchanged");
    }
    bail!(
        "tc qdisc del dev {iface} root in {}: {}",
        found.node.namespace,
        err.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netem_arguments_follow_tc_netem() {
        let s = Shape {
            delay_ms: Some(20.0),
            jitter_ms: Some(5.0),
            loss_pct: Some(1.5),
            rate: Some("10mbit".into()),
        };
        s.validate().expect("valid");
        assert_eq!(
            s.netem_args().join(" "),
            "netem delay 20ms 5ms loss 1.5% rate 10mbit"
        );
        assert_eq!(s.tbf_args(), None, "tbf only for a rate alone");
        let r = Shape {
            rate: Some("1gbit".into()),
            ..Shape::default()
        };
        assert_eq!(
            r.tbf_args().map(|a| a.join(" ")).as_deref(),
            Some("tbf rate 1gbit burst 32kb latency 200ms")
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        let bad = |s: Shape| s.validate().unwrap_err().to_string();
        let e = bad(Shape {
            loss_pct: Some(101.0),
            ..Shape::default()
        });
        assert!(e.contains("--loss"), "{e}");
        let e = bad(Shape {
            jitter_ms: Some(3.0),
            ..Shape::default()
        });
        assert!(e.contains("--delay"), "{e}");
        let e = bad(Shape {
            rate: Some("fast".into()),
            ..Shape::default()
        });
        assert!(e.contains("--rate fast"), "{e}");
        let e = bad(Shape {
            rate: Some("0mbit".into()),
            ..Shape::default()
        });
        assert!(e.contains("--rate"), "{e}");
    }
}
