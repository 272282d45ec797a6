//! Per-job capabilities. A worker proves that it may fetch one job's input
//! and deliver that job's result with `HMAC-SHA256(cluster secret, job id)`,
//! carried in the job descriptor. Workers never hold the cluster secret, so a
//! forged descriptor that points a worker at someone else's URL gets a token
//! good for one job id that does not exist, not the key to every API node.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ids::to_hex;

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// Issues and checks job tokens with the cluster secret. Its `Debug` never
/// shows the secret.
#[derive(Clone)]
pub struct JobSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for JobSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JobSigner(<redacted>)")
    }
}

impl JobSigner {
    /// Signs with `secret` (the cluster secret).
    pub fn new(secret: &str) -> Self {
        Self {
            secret: secret.as_bytes().to_vec(),
        }
    }

    /// The token that opens `job_id`'s staged input and result slot.
    pub fn token(&self, job_id: &str) -> String {
        to_hex(&hmac_sha256(&self.secret, job_id.as_bytes()))
    }

    /// Whether `presented` is `job_id`'s token, compared in constant time.
    pub fn verify(&self, job_id: &str, presented: &str) -> bool {
        let expected = self.token(job_id);
        expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            to_hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn test_a_job_token_opens_its_job_only() {
        let signer = JobSigner::new("cluster-secret-0123456789");
        let token = signer.token("job_a");
        assert!(signer.verify("job_a", &token));
        assert!(!signer.verify("job_b", &token));
        assert!(!signer.verify("job_a", &token[..63]));
        assert!(!JobSigner::new("another-secret-0123456789").verify("job_a", &token));
        assert!(!format!("{signer:?}").contains("cluster-secret"));
    }
}
