//! `plexnet netem NODE IF`: delay, jitter, loss and a rate limit on one
//! interface of a node, as containerlab's `tools netem set` gives them:
//! tc's netem qdisc (tc-netem(8)) at the root of the interface, replaced
//! by each call; `--clear` removes it. Without options it shows the
//! interface's root qdisc.
//!
//! netem is a kernel option (CONFIG_NET_SCH_NETEM, module `sch_netem`);
//! `plexnet doctor` probes it (scripts/host-needs.list, `kernel netem`).
//! A kernel without it still gets a rate and a loss: `--rate` through the
//! token bucket filter (tc-tbf(8)) at IF's root, `--loss` through a BPF
//! classifier on the ingress of the link's other end ([`super::loss`]);
//! delay and jitter are refused with the reason.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use super::record::{Faults, Shaped};
use super::{loss, Found};
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

    /// The token bucket filter for the rate, without netem (tc-tbf(8)): a
    /// burst of 32 KiB, packets queued at most 200 ms.
    fn tbf_args(&self) -> Option<Vec<String>> {
        let rate = self.rate.as_deref()?;
        let tbf = ["tbf", "rate", rate, "burst", "32kb", "latency", "200ms"];
        Some(tbf.map(String::from).to_vec())
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
    /// Without netem: where the loss classifier drops (`NAMESPACE IF
    /// ingress`) and how many packets it dropped so far (the clsact
    /// qdisc's `drops`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_dropped: Option<u64>,
}

fn tc_in(ns: &str, args: &[String]) -> Result<std::process::Output> {
    let mut argv = vec!["tc"];
    argv.extend(args.iter().map(String::as_str));
    process::in_namespace(ns, &argv)?
        .output()
        .with_context(|| format!("running tc {} in {ns}", args.join(" ")))
}

fn tc_ok_in(ns: &str, args: &[String]) -> Result<String> {
    let out = tc_in(ns, args)?;
    if !out.status.success() {
        bail!(
            "tc {} in {ns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tc(found: &Found, args: &[String]) -> Result<std::process::Output> {
    tc_in(&found.node.namespace, args)
}

fn tc_ok(found: &Found, args: &[String]) -> Result<String> {
    tc_ok_in(&found.node.namespace, args)
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

/// The loss classifier's place and drop count, when one is installed at
/// the far end of `iface` (none on a kernel with netem, or on a non-link).
fn loss_installed(found: &Found, iface: &str) -> Option<(String, u64)> {
    let far = loss::far_end(found, iface).ok()?;
    let args = ["-s", "-j", "qdisc", "show", "dev", &far.ifname].map(String::from);
    let text = tc_ok_in(&far.ns, &args).ok()?;
    let qdiscs: serde_json::Value = serde_json::from_str(&text).ok()?;
    let clsact = qdiscs.as_array()?.iter().find(|q| q["kind"] == "clsact")?;
    let drops = clsact["drops"].as_u64().unwrap_or(0);
    Some((format!("{} {} ingress", far.ns, far.ifname), drops))
}

/// Removes a loss classifier at the far end of `iface`; whether there
/// was one.
fn remove_loss(found: &Found, iface: &str) -> Result<bool> {
    let Ok(far) = loss::far_end(found, iface) else {
        return Ok(false);
    };
    let out = tc_in(&far.ns, &loss::remove_args(&far))?;
    Ok(out.status.success())
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
    let loss = loss_installed(found, iface);
    Ok(NetemReport {
        node,
        iface: iface.to_string(),
        action,
        qdisc,
        current: current(found, iface)?,
        loss_at: loss.as_ref().map(|(at, _)| at.clone()),
        loss_dropped: loss.map(|(_, n)| n),
    })
}

/// `tc qdisc replace dev IF root netem ...`; on a kernel without netem,
/// tbf for the rate and the loss classifier at the link's other end.
/// Replaces what an earlier call set. Returns what was set, as given.
fn set_root(found: &Found, iface: &str, shape: &Shape) -> Result<String> {
    remove_loss(found, iface)?;
    let netem = shape.netem_args();
    let out = tc(found, &root_qdisc(iface, &netem))?;
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
    set_without_netem(found, iface, shape)
}

fn root_qdisc(iface: &str, qdisc: &[String]) -> Vec<String> {
    let root = ["qdisc", "replace", "dev", iface, "root"].map(String::from);
    [root.to_vec(), qdisc.to_vec()].concat()
}

/// tbf for `--rate`, the BPF classifier for `--loss`; `--delay` and
/// `--jitter` have no stand-in and are refused before anything is set.
fn set_without_netem(found: &Found, iface: &str, shape: &Shape) -> Result<String> {
    if shape.delay_ms.is_some() {
        bail!(
            "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM, module sch_netem; `sudo plexnet doctor` checks it): --delay and --jitter need it; --loss and --rate work without it"
        );
    }
    // Found before anything is set, so a non-link fails with nothing half-made.
    let far = shape
        .loss_pct
        .map(|_| loss::far_end(found, iface))
        .transpose()?;
    let mut set = Vec::new();
    if let Some(tbf) = shape.tbf_args() {
        tc_ok(found, &root_qdisc(iface, &tbf))?;
        set.push(tbf.join(" "));
    }
    if let (Some(pct), Some(far)) = (shape.loss_pct, far) {
        for args in loss::install_args(&far, pct) {
            tc_ok_in(&far.ns, &args)?;
        }
        set.push(format!(
            "loss {pct}% (bpf at {} {} ingress)",
            far.ns, far.ifname
        ));
    }
    Ok(set.join(", "))
}

/// `tc qdisc del dev IF root`: `cleared`, or `unchanged` when only the
/// default qdisc was there.
fn clear_root(found: &Found, iface: &str) -> Result<&'static str> {
    let had_loss = remove_loss(found, iface)?;
    let args = ["qdisc", "del", "dev", iface, "root"].map(String::from);
    let out = tc(found, &args)?;
    if out.status.success() || had_loss {
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
