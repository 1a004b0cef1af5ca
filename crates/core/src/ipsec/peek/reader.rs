//! The plaintext peek reads: the few cipher blocks holding the inner
//! headers and the ESP trailer, decrypted in one pipelined AES call (RFC
//! 3602 §2 for CBC, RFC 4106 §3.1 for GCM), or the payload in place for AH
//! and ESP-NULL.

use super::PeekError;
use crate::ipsec::sa::{EncAlg, Sa};

/// The plaintext of the protected payload. For ESP, the blocks peek needs
/// are decrypted together, in one pipelined AES call, into two small
/// windows: the head (inner headers) and the tail (the ESP trailer).
/// AH and ESP-NULL payloads are read in place.
pub(super) struct Reader<'a> {
    sa: &'a Sa,
    /// The payload is cleartext (AH, ESP-NULL).
    clear: bool,
    iv: &'a [u8],
    ct: &'a [u8],
    /// Plaintext of blocks `0..head_blocks`.
    head: [u8; HEAD_BLOCKS * 16],
    head_blocks: usize,
    /// Plaintext of blocks `tail_first..tail_first + tail_blocks`.
    tail: [u8; 32],
    tail_first: usize,
    tail_blocks: usize,
    /// AES block operations spent.
    pub(super) blocks: u8,
}

/// `block ^= other` (16 bytes), as one 128-bit operation.
#[inline]
fn xor16(block: &mut aes::Block, other: &[u8]) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    a.copy_from_slice(block);
    b.copy_from_slice(&other[..16]);
    let x = u128::from_ne_bytes(a) ^ u128::from_ne_bytes(b);
    block.copy_from_slice(&x.to_ne_bytes());
}

/// Blocks 0..3 hold an inner IPv4 header without options (20 bytes) and
/// the first 14 bytes of TCP (ports and flags).
pub(super) const HEAD_BLOCKS: usize = 3;

impl<'a> Reader<'a> {
    pub(super) fn new(sa: &'a Sa, clear: bool, iv: &'a [u8], ct: &'a [u8]) -> Self {
        Reader {
            sa,
            clear,
            iv,
            ct,
            head: [0; HEAD_BLOCKS * 16],
            head_blocks: 0,
            tail: [0; 32],
            tail_first: 0,
            tail_blocks: 0,
            blocks: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.ct.len()
    }

    /// Decrypts blocks `idx` (each inside the ciphertext) into `out`, in
    /// one AES call.
    fn decrypt(&mut self, idx: &[usize], out: &mut [aes::Block]) {
        let ct_block = |i: usize| {
            let mut c = aes::Block::default();
            let end = self.ct.len().min(i * 16 + 16);
            c[..end - i * 16].copy_from_slice(&self.ct[i * 16..end]);
            c
        };
        match self.sa.config().enc {
            EncAlg::Null => {
                for (o, &i) in out.iter_mut().zip(idx) {
                    *o = ct_block(i);
                }
            }
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => {
                for (o, &i) in out.iter_mut().zip(idx) {
                    *o = ct_block(i);
                }
                self.sa.crypto.cipher.decrypt_raw_blocks(out);
                // P_i = D(C_i) ⊕ C_{i-1}, with C_{-1} the IV (RFC 3602 §2).
                for (o, &i) in out.iter_mut().zip(idx) {
                    let prev = if i == 0 {
                        self.iv
                    } else {
                        &self.ct[(i - 1) * 16..i * 16]
                    };
                    o.iter_mut().zip(prev).for_each(|(x, p)| *x ^= p);
                }
                self.blocks += out.len() as u8;
            }
            EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => {
                let mut iv = [0u8; 8];
                iv.copy_from_slice(self.iv);
                self.sa.crypto.cipher.gcm_keystream_blocks(&iv, idx, out);
                for (o, &i) in out.iter_mut().zip(idx) {
                    xor16(o, &ct_block(i));
                }
                self.blocks += out.len() as u8;
            }
        }
    }

    /// Decrypts the first `head` blocks and, with `trailer`, the block(s)
    /// holding the last two bytes: everything peek normally reads, in one
    /// call.
    pub(super) fn load(&mut self, head: usize, trailer: bool) {
        if self.clear {
            return;
        }
        let nblocks = self.ct.len().div_ceil(16);
        let head = head.min(HEAD_BLOCKS).min(nblocks);
        let mut idx = [0usize; HEAD_BLOCKS + 2];
        idx[..head].iter_mut().enumerate().for_each(|(k, i)| *i = k);
        let mut n = head;
        let (t_first, t_last) = ((self.ct.len() - 2) / 16, (self.ct.len() - 1) / 16);
        if trailer {
            for i in t_first..=t_last {
                idx[n] = i;
                n += 1;
            }
        }
        let mut out = [aes::Block::default(); HEAD_BLOCKS + 2];
        self.decrypt(&idx[..n], &mut out[..n]);
        for (k, o) in out[..head].iter().enumerate() {
            self.head[k * 16..k * 16 + 16].copy_from_slice(o);
        }
        self.head_blocks = head;
        if trailer {
            for (k, o) in out[head..n].iter().enumerate() {
                self.tail[k * 16..k * 16 + 16].copy_from_slice(o);
            }
            self.tail_first = t_first;
            self.tail_blocks = n - head;
        }
    }

    /// Plaintext bytes `at..at + buf.len()`.
    pub(super) fn read(&mut self, at: usize, buf: &mut [u8]) -> Result<(), PeekError> {
        let end = at + buf.len();
        if end > self.ct.len() {
            return Err(PeekError::Truncated);
        }
        if self.clear {
            buf.copy_from_slice(&self.ct[at..end]);
        } else if end <= self.head_blocks * 16 {
            buf.copy_from_slice(&self.head[at..end]);
        } else if at >= self.tail_first * 16 && end <= (self.tail_first + self.tail_blocks) * 16 {
            let o = self.tail_first * 16;
            buf.copy_from_slice(&self.tail[at - o..end - o]);
        } else {
            // Beyond the head: an inner header with IP options. At most 5
            // blocks (60 + 14 bytes), decrypted now.
            let first = at / 16;
            let count = (end - 1) / 16 - first + 1;
            if count > HEAD_BLOCKS + 2 {
                return Err(PeekError::Malformed);
            }
            let mut idx = [0usize; HEAD_BLOCKS + 2];
            idx[..count]
                .iter_mut()
                .enumerate()
                .for_each(|(k, i)| *i = first + k);
            let mut out = [aes::Block::default(); HEAD_BLOCKS + 2];
            self.decrypt(&idx[..count], &mut out[..count]);
            let mut flat = [0u8; (HEAD_BLOCKS + 2) * 16];
            for (k, o) in out[..count].iter().enumerate() {
                flat[k * 16..k * 16 + 16].copy_from_slice(o);
            }
            let o = first * 16;
            buf.copy_from_slice(&flat[at - o..end - o]);
        }
        Ok(())
    }
}
