//! The image's side of the CF (`CfAsk`, `Image::handle_cf_reply` and
//! `handle_cf_response`): figure4 in the simulator with a coupling
//! facility that answers some requests with what the input says instead
//! of the truth (wrong ranges, errors, corrupted records, odd keys), while
//! MVS1 opens a connection, checkpoints it, fails, and MVS5 takes DVA1
//! over from what the CF answers. No answer may panic an image.
#![no_main]

use std::cell::RefCell;
use std::rc::Rc;

use libfuzzer_sys::fuzz_target;
use plexnet::sim::{CfService, World};
use plexnet::sysplex::cf::CouplingFacility;
use plexnet::sysplex::xcf::{CfError, CfRequest, CfResponse};
use plexnet::wire::TcpFlags;

mod world;

/// The real CF, and the input that decides which answers to falsify.
struct LyingCf {
    cf: CouplingFacility,
    input: Rc<RefCell<Vec<u8>>>,
}

impl LyingCf {
    fn take(&self, n: usize) -> Vec<u8> {
        let mut input = self.input.borrow_mut();
        let n = n.min(input.len());
        input.drain(..n).collect()
    }

    fn u64_of(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0, |acc, b| (acc << 8) | u64::from(*b))
    }
}

impl CfService for LyingCf {
    fn request(&mut self, req: CfRequest) -> CfResponse {
        let truth = self.cf.handle(req);
        let Some(&choice) = self.take(1).first() else {
            return truth;
        };
        match choice % 8 {
            0..=2 => truth,
            3 => CfResponse::Error(CfError::Malformed("fuzz".into())),
            // A range from anywhere: of the size asked for when the truth
            // was a range (so the image takes it), else of any size.
            4 => {
                let b = self.take(12);
                let first = Self::u64_of(b.get(..8).unwrap_or(&[]));
                let n = match truth {
                    CfResponse::SeqRange { n, .. } => n,
                    _ => Self::u64_of(b.get(8..).unwrap_or(&[])) as u32,
                };
                CfResponse::SeqRange { first, n }
            }
            5 => match truth {
                // A corrupted record: the input's bytes XORed in.
                CfResponse::Value(Some(mut v)) => {
                    let len = usize::from(self.take(1).first().copied().unwrap_or(0));
                    for (b, x) in v.iter_mut().zip(self.take(len)) {
                        *b ^= x;
                    }
                    CfResponse::Value(Some(v))
                }
                CfResponse::Keys(mut k) => {
                    let len = usize::from(self.take(1).first().copied().unwrap_or(0));
                    k.push(String::from_utf8_lossy(&self.take(len)).into_owned());
                    CfResponse::Keys(k)
                }
                other => other,
            },
            6 => {
                let len = usize::from(self.take(1).first().copied().unwrap_or(0));
                CfResponse::Value(Some(self.take(len)))
            }
            _ => CfResponse::Done,
        }
    }
}

fn run(data: &[u8]) {
    let input = Rc::new(RefCell::new(data.to_vec()));
    let cf = LyingCf {
        cf: CouplingFacility::new(),
        input: input.clone(),
    };
    let mut w = World::from_sysplex(7, world::figure4(), world::DVA1, Box::new(cf));
    w.install_sa(plexnet::sim::SaSpec::esp_cbc_sha1());
    let ack = TcpFlags::ACK;
    w.client_tcp(40001, 500, 0, TcpFlags::SYN, &[]);
    w.client_tcp(40001, 501, 1001, ack, &[]);
    w.client_tcp(40001, 501, 1001, ack, b"GET / HTTP/1.1\r\n\r\n");
    w.advance_to(2000);
    w.fail("MVS1");
    w.advance_to(8000);
    w.client_tcp(40002, 700, 0, TcpFlags::SYN, &[]);
    w.client_tcp(40001, 519, 1001, ack, b"GET /b HTTP/1.1\r\n\r\n");
    w.advance_to(9000);
}

fuzz_target!(|data: &[u8]| run(data));
