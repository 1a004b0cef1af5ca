//! Filling the shadow caches (patent Fig. 7, Fig. 6 block 118): XCF
//! messages from routing stacks install and delete SA pairs and bundles,
//! each with its dynamic filter placed in front of its anchor in the
//! DVIPA's filter table (Fig. 7 block 122).

use super::*;

/// The selectors a shadow pair's inbound SA checks decrypted packets
/// against while opening them (RFC 4301 §5.2). With a dynamic filter,
/// every IPv4 packet: block 152's lookup in the DVIPA's filter table is
/// that check, and it can name the rule and reason (a packet outside the
/// SA's selectors is outside its dynamic filter, `outside-sa`, or inside
/// another SA's, `wrong-sa`); with `FilterAt::Routing` the routing stack
/// made it on the peeked headers, the very bytes the ICV then
/// authenticates (claim 7). Without one, the SA's own selectors.
pub(super) fn opening_selector(install: &SaInstall) -> TrafficSelector {
    match install.filter {
        Some(_) => TrafficSelector::ANY_V4,
        None => install.inbound.selector,
    }
}

/// An empty table for the anchors a routing stack sends: no rules, the
/// default deny after them. An anchor with LOG logs what this target
/// denies under it; the implicit default deny does not (the routing
/// stack, which has the whole policy, logs the rest).
pub(super) fn anchors_table() -> Result<FilterTable, RuleSetError> {
    let options = FilterOptions {
        logging: true,
        log_implicit: false,
        ..FilterOptions::default()
    };
    FilterTable::new(RuleSet::default(), options)
}

/// The anchor of `f` among the table's rules: appended when new, replaced
/// when the routing stack's rule changed (its dynamic filters stay in
/// front of it).
pub(super) fn place_anchor(table: &mut FilterTable, f: &SaFilter) -> Result<(), RuleSetError> {
    let mut rules = table.active_rules().clone();
    match rules.rules.iter_mut().find(|r| r.name == f.anchor.name) {
        Some(r) if *r == f.anchor => return Ok(()),
        Some(r) => *r = f.anchor.clone(),
        None => rules.rules.push(f.anchor.clone()),
    }
    table.install_policy(rules).map(|_| ())
}

impl TargetStack {
    /// Messages from routing stacks (Fig. 7 blocks 120–122, Fig. 11 block 170).
    pub fn on_xcf(
        &mut self,
        now: Instant,
        from: &str,
        msg: &XcfMessage,
    ) -> Result<(), InstallError> {
        match msg {
            XcfMessage::VipaList { owner, vipas } => {
                self.report_to_new_owner(owner, vipas);
                // A DVIPA has one routing stack: after a takeover the new
                // one's list replaces what the old one announced.
                for (_, list) in self.vipa_lists.iter_mut().filter(|(o, _)| *o != owner) {
                    list.retain(|e| !vipas.iter().any(|v| v.dvipa == e.dvipa));
                }
                self.vipa_lists.retain(|_, l| !l.is_empty());
                self.vipa_lists.insert(owner.clone(), vipas.clone());
            }
            XcfMessage::SaInstall(install) => self.install(now, from, install)?,
            XcfMessage::BundleInstall(bundle) => self.install_bundle(now, from, bundle)?,
            XcfMessage::BundleDelete {
                dvipa,
                esp_inbound_spi,
                ah_inbound_spi,
                ..
            } => self.remove_pairs(|p| {
                let ah_spi = p.ah.as_ref().map(|a| a.bundle.inbound.spi);
                p.install.dvipa == *dvipa
                    && p.install.inbound.spi == *esp_inbound_spi
                    && ah_spi == Some(*ah_inbound_spi)
            }),
            XcfMessage::SaDelete {
                dvipa, inbound_spi, ..
            } => self.remove_pairs(|p| {
                p.install.dvipa == *dvipa && p.install.inbound.spi == *inbound_spi
            }),
            XcfMessage::RekeyTiming { dvipa, spi, late } => self.rekey_timing(*dvipa, *spi, *late),
            _ => {}
        }
        Ok(())
    }

    /// The DVIPAs of `vipas` whose routing stack was another image (or
    /// none) until this list from `owner`: a takeover or a giveback. The
    /// connections this target serves to each go to `owner`
    /// ([`super::served`]), so its DCT routes them all, also those the
    /// previous routing stack made after its last CF journal write.
    fn report_to_new_owner(&mut self, owner: &str, vipas: &[VipaEntry]) {
        let mut dvipas: Vec<Ipv4Addr> = vipas.iter().map(|v| v.dvipa).collect();
        dvipas.sort_unstable();
        dvipas.dedup();
        for dvipa in dvipas {
            let announced_by = self
                .vipa_lists
                .iter()
                .find(|(_, list)| list.iter().any(|e| e.dvipa == dvipa))
                .map(|(o, _)| o.as_str());
            if announced_by == Some(owner) {
                continue;
            }
            for msg in self.served.report(dvipa) {
                self.outbox.push((owner.to_string(), msg));
            }
        }
    }

    /// Removes the shadow pairs `gone` selects (deleted, expired or
    /// superseded at the routing stack) with their dynamic filters; the
    /// anchor rules stay, so what they require IPsec for is not sent in
    /// clear once no pair covers it (Fig. 10 block 160).
    pub(super) fn remove_pairs(&mut self, gone: impl Fn(&ShadowPair) -> bool) {
        let filters = &mut self.filters;
        self.shadow.retain(|p| {
            if !gone(p) {
                return true;
            }
            if let Some(t) = filters.get_mut(&p.install.dvipa) {
                t.remove_dynamic(&p.install.inbound_id());
            }
            false
        });
    }

    /// A DVIPA given back to its owner: the shadow pairs of `dvipa` that
    /// `owner` (this image, as the DVIPA's routing stack) installed and no
    /// other routing stack installed again since go; returns how many.
    pub fn forget_pairs_of(&mut self, dvipa: Ipv4Addr, owner: &str) -> usize {
        let before = self.shadow.len();
        self.remove_pairs(|p| p.install.dvipa == dvipa && p.owner == owner);
        before - self.shadow.len()
    }

    /// Fig. 7 block 122: the pair goes into the shadow cache of its DVIPA.
    pub fn install(
        &mut self,
        now: Instant,
        owner: &str,
        install: &SaInstall,
    ) -> Result<(), InstallError> {
        self.insert(now, owner, install, None)
    }

    /// Fig. 7 block 122 for an AH+ESP bundle: the ESP pair and the AH pair
    /// outside it go into the shadow cache together.
    pub fn install_bundle(
        &mut self,
        now: Instant,
        owner: &str,
        bundle: &BundleInstall,
    ) -> Result<(), InstallError> {
        bundle.check().map_err(SaError::from)?;
        let (ah, report) = (&bundle.ah, bundle.esp.report_bytes);
        let ah = ShadowAh {
            inbound: InboundSa::new(Sa::new(ah.inbound.clone())?, now),
            outbound: OutboundSa::new(Sa::new(ah.outbound.clone())?, now),
            inbound_life: lifesize_for(&ah.inbound, report),
            outbound_life: lifesize_for(&ah.outbound, report),
            bundle: ah.clone(),
        };
        self.insert(now, owner, &bundle.esp, Some(ah))
    }

    pub(super) fn insert(
        &mut self,
        now: Instant,
        owner: &str,
        install: &SaInstall,
        ah: Option<ShadowAh>,
    ) -> Result<(), InstallError> {
        // The same pair again from another routing stack (a takeover): the
        // shadow SA keeps its replay window and counters, only its owner
        // (where lifesize reports and ConnEnded go) and its filter (the new
        // owner's) change.
        if let Some(i) = self.shadow.iter().position(|p| p.install.same_sas(install)) {
            self.place_filter(install)?;
            let p = &mut self.shadow[i];
            p.inbound.set_selector(opening_selector(install))?;
            p.owner = owner.to_string();
            p.install.filter = install.filter.clone();
            return Ok(());
        }
        let mut opening = install.inbound.clone();
        opening.selector = opening_selector(install);
        let inbound = InboundSa::new(Sa::new(opening)?, now);
        let outbound = OutboundSa::new(Sa::new(install.outbound.clone())?, now);
        self.place_filter(install)?;
        let pair = ShadowPair {
            owner: owner.to_string(),
            inbound_life: lifesize_for(&install.inbound, install.report_bytes),
            outbound_life: lifesize_for(&install.outbound, install.report_bytes),
            install: install.clone(),
            inbound,
            outbound,
            ah,
        };
        self.shadow
            .retain(|p| p.install.inbound.spi != install.inbound.spi);
        self.shadow.push(pair);
        Ok(())
    }

    /// Fig. 7 block 122: the pair's dynamic filter goes into the filter
    /// table of its DVIPA, in front of the anchor rule that came with it
    /// (added to the table, or replaced when the routing stack's version
    /// changed). Whatever filter the same inbound SA had before goes. All
    /// or nothing: on an error the table is as it was.
    pub(super) fn place_filter(&mut self, install: &SaInstall) -> Result<(), InstallError> {
        let Some(f) = &install.filter else {
            if let Some(t) = self.filters.get_mut(&install.dvipa) {
                t.remove_dynamic(&install.inbound_id());
            }
            return Ok(());
        };
        let mut table = match self.filters.get(&install.dvipa) {
            Some(t) => t.clone(),
            None => anchors_table()?,
        };
        place_anchor(&mut table, f)?;
        table.remove_dynamic(&install.inbound_id());
        table.install_dynamic(f.dynamic.clone())?;
        self.filters.insert(install.dvipa, table);
        Ok(())
    }
}
