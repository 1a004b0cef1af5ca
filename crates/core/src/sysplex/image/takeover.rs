//! The protocol steps of a VIPA takeover at the image that takes a DVIPA
//! over (its VIPABACKUP): it becomes the DVIPA's routing stack with its
//! own VIPADISTRIBUTE statements for it, keeps a DCT journal from then on
//! (what the CF holds for the next takeover), and owns the DVIPA. The
//! claim in the CF, the adoption of the CF's SAs and connections
//! ([`crate::sysplex::takeover::Adopter`]), the kernel plumbing and the
//! gratuitous ARP are the shell's steps around these.

use std::net::Ipv4Addr;

use super::Image;
use crate::sysplex::config::VipaDistribute;
use crate::sysplex::routing::RoutingStack;

impl Image {
    /// Becomes the routing stack of `dvipa` with the statements `dists`;
    /// `fresh` is the routing stack to start from when this image had
    /// none (a pure target until now).
    pub fn become_routing_stack(
        &mut self,
        dvipa: Ipv4Addr,
        dists: &[VipaDistribute],
        fresh: Option<RoutingStack>,
    ) {
        if self.routing.is_none() {
            self.routing = fresh;
        }
        if let Some(r) = self.routing.as_mut() {
            if !r.dvipas().contains(&dvipa) {
                r.add_distributions(dists);
            }
            r.keep_journal();
        }
        self.stack.add_owned(dvipa);
    }
}
