//! What the routing stack is told: SA pairs and bundles to own and
//! distribute (patent Fig. 6 blocks 116-118), their deletion, and the XCF
//! messages of its targets (listeners, ended connections, lifesize reports
//! and authenticated sequence numbers).

use super::*;

impl RoutingStack {
    /// Fig. 6 block 112: an SA pair for a DVIPA is installed in the owned
    /// cache, with its dynamic filter in front of its anchor in this
    /// stack's filter table when it has one (see
    /// [`FilterTable::anchor_for`]). Returns the pair as the
    /// targets must get it: the caller stores the starting sequence number
    /// in the CF (block 116) and sends it as [`XcfMessage::SaInstall`],
    /// dynamic filter and anchor included, to every target (block 118),
    /// this image's own target stack included.
    pub fn install(&mut self, install: SaInstall) -> Result<SaInstall, SaError> {
        self.insert(install, None)
    }

    /// Fig. 6 block 112 for an AH+ESP bundle: the ESP pair and the AH pair
    /// outside it go into the owned cache together, the dynamic filter
    /// made from the ESP pair. The caller creates two sequence structures
    /// in the CF (one per outbound SA, block 116) and sends the returned
    /// [`XcfMessage::BundleInstall`] to every target (block 118).
    pub fn install_bundle(&mut self, bundle: &BundleInstall) -> Result<BundleInstall, SaError> {
        bundle.check()?;
        let ah = OwnedAh {
            inbound: Sa::new(bundle.ah.inbound.clone())?,
            precheck: precheck_window(&bundle.ah.inbound),
            bundle: bundle.ah.clone(),
        };
        let esp = self.insert(bundle.esp.clone(), Some(ah))?;
        Ok(BundleInstall {
            esp,
            ah: bundle.ah.clone(),
        })
    }

    pub(super) fn insert(
        &mut self,
        mut install: SaInstall,
        ah: Option<OwnedAh>,
    ) -> Result<SaInstall, SaError> {
        let inbound = Sa::new(install.inbound.clone())?;
        let precheck = precheck_window(&install.inbound);
        // A pair with the same inbound SPI is superseded; its dynamic
        // filter goes with it.
        self.delete(install.inbound.spi);
        install.filter = self.place_filter(&install);
        self.pairs.push(OwnedPair {
            install: install.clone(),
            ah,
            inbound,
            precheck,
            peeks: 0,
            forwarded: 0,
        });
        Ok(install)
    }

    /// Fig. 6 block 118's filter half: with a filter table, the pair's
    /// dynamic filter (its SAs' selectors) goes in front of the IPsec rule
    /// that anchors it ([`FilterTable::anchor_for`]), and the anchor rule
    /// travels with it to the targets. Whatever filter `install` came with
    /// (a CF record of the previous owner, after a takeover) is replaced
    /// by this stack's own. `None` without a table or an anchor: the pair
    /// is filtered by its selectors only, as before.
    pub(super) fn place_filter(&mut self, install: &SaInstall) -> Option<SaFilter> {
        let table = self.filter.as_mut()?;
        let anchor = table
            .anchor_for(&install.outbound.selector, &install.inbound.selector)?
            .clone();
        let dynamic = DynamicFilter::from_sas(&anchor.name, &install.inbound, &install.outbound);
        table.remove_dynamic(&dynamic.sas.inbound);
        // The anchor was found in this table, and the old filter of these
        // SAs was just removed: the install cannot fail.
        table.install_dynamic(dynamic.clone()).ok()?;
        Some(SaFilter { anchor, dynamic })
    }

    /// Removes an owned pair, and its dynamic filter from the filter
    /// table; returns it so the caller can tell the targets.
    pub fn delete(&mut self, inbound_spi: Spi) -> Option<OwnedPair> {
        let i = self
            .pairs
            .iter()
            .position(|p| p.install.inbound.spi == inbound_spi)?;
        let pair = self.pairs.remove(i);
        if let Some(table) = self.filter.as_mut() {
            table.remove_dynamic(&pair.install.inbound_id());
        }
        Some(pair)
    }

    /// Messages from targets that concern the routing stack.
    pub fn on_xcf(&mut self, from: &str, msg: &XcfMessage) {
        match msg {
            XcfMessage::RegisterListener { dvipa, port } => {
                self.listeners.register(from, *dvipa, *port);
            }
            XcfMessage::DeregisterListener { dvipa, port } => {
                self.listeners.deregister(from, *dvipa, *port);
            }
            // Authenticated at the target: now the pre-check may move (the
            // ESP window, or a bundle's AH window).
            XcfMessage::Lifesize {
                spi,
                highest_seq,
                direction: crate::sysplex::xcf::Direction::Inbound,
                ..
            } if *highest_seq > 0 => {
                if let Some(w) = self.precheck_of(*spi) {
                    w.update(*highest_seq);
                }
            }
            XcfMessage::NewConn {
                dvipa,
                local_port,
                peer,
                peer_port,
                protocol: 6,
            } => {
                let key = ConnKey {
                    client: *peer,
                    client_port: *peer_port,
                    dvipa: *dvipa,
                    port: *local_port,
                };
                self.take_newconn(from, key);
            }
            XcfMessage::ConnReport {
                dvipa,
                target_xcf,
                conns,
            } => self.take_report(from, *dvipa, *target_xcf, conns),
            XcfMessage::ConnEnded {
                dvipa,
                port,
                client,
                client_port,
                reason,
            } => {
                let key = ConnKey {
                    client: *client,
                    client_port: *client_port,
                    dvipa: *dvipa,
                    port: *port,
                };
                match reason {
                    ConnEndReason::Rejected | ConnEndReason::Reset | ConnEndReason::Closed => {
                        if self.dct.remove(&key).is_some() {
                            self.note_ended(key);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Fig. 11: `from` opens the connection `key` from the DVIPA; its
    /// inbound packets must go to that target, whatever the port.
    fn take_newconn(&mut self, from: &str, key: ConnKey) {
        let xcf = self
            .targets_of(key.dvipa)
            .into_iter()
            .find(|(t, _)| t == from)
            .map(|(_, x)| x);
        if let Some(xcf) = xcf {
            let entry = self.fresh_entry(from, xcf, ConnState::SynSeen, true);
            self.add_entry(key, entry);
        }
    }

    /// A target's connections to `dvipa` after a takeover or a giveback
    /// (z/OS: the targets tell the new distributing stack about their
    /// connections): each joins the DCT towards `from`, which holds it,
    /// unless the DCT has it there already (from the CF). Room is made
    /// as for a SYN; a full table of live entries refuses it.
    fn take_report(
        &mut self,
        from: &str,
        dvipa: Ipv4Addr,
        target_xcf: Ipv4Addr,
        conns: &[ReportedConn],
    ) {
        let n = conns.len() as u64;
        self.counters.reports.received += n;
        if !self.dvipas().contains(&dvipa) {
            self.counters.reports.refused += n;
            return;
        }
        for c in conns {
            let key = ConnKey {
                client: c.client,
                client_port: c.client_port,
                dvipa,
                port: c.port,
            };
            match self.dct.get(&key) {
                Some(e) if *e.target == *from => {
                    self.counters.reports.known += 1;
                    continue;
                }
                Some(_) => self.counters.reports.moved += 1,
                None => match self.dct.make_room() {
                    Ok(evicted) => {
                        if let Some(evicted) = evicted {
                            self.note_ended(evicted);
                        }
                        self.counters.reports.recovered += 1;
                    }
                    Err(_) => {
                        self.counters.reports.refused += 1;
                        continue;
                    }
                },
            }
            let entry = self.fresh_entry(from, target_xcf, c.state, c.ipsec);
            self.add_entry(key, entry);
        }
    }

    /// The pre-check window of the owned inbound SA `spi` (ESP, AH, or the
    /// AH of a bundle).
    pub(super) fn precheck_of(&mut self, spi: Spi) -> Option<&mut ReplayWindow> {
        self.pairs.iter_mut().find_map(|p| {
            if p.install.inbound.spi == spi {
                Some(&mut p.precheck)
            } else {
                p.ah.as_mut()
                    .filter(|a| a.bundle.inbound.spi == spi)
                    .map(|a| &mut a.precheck)
            }
        })
    }

    /// Routing-stack (pre-)filter state per SA for displays.
    pub fn sa_summary(&self) -> Vec<BTreeMap<&'static str, String>> {
        self.pairs
            .iter()
            .map(|p| {
                let mut m = BTreeMap::from([
                    ("dvipa", p.install.dvipa.to_string()),
                    ("inbound_spi", format!("{:#010x}", p.install.inbound.spi.0)),
                    (
                        "outbound_spi",
                        format!("{:#010x}", p.install.outbound.spi.0),
                    ),
                    ("protocol", format!("{:?}", p.install.inbound.protocol)),
                    ("peeks", p.peeks.to_string()),
                    ("forwarded", p.forwarded.to_string()),
                ]);
                if let Some(ah) = &p.ah {
                    m.insert("protocol", "AhEsp".into());
                    m.insert(
                        "ah_inbound_spi",
                        format!("{:#010x}", ah.bundle.inbound.spi.0),
                    );
                    m.insert(
                        "ah_outbound_spi",
                        format!("{:#010x}", ah.bundle.outbound.spi.0),
                    );
                }
                m
            })
            .collect()
    }
}
