//! The SASL exchanges of a connection, as pure state machines over the bytes the broker's
//! SaslAuthenticate carries: PLAIN (RFC 4616) and SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802,
//! RFC 7677), with `ring` for PBKDF2, HMAC and the digests. No I/O here: the connection sends
//! what [`Exchange::next`] returns and hands back what the broker answered.
//!
//! The password is not SASLprep-normalised (as librdkafka does not either): a password outside
//! ASCII is used as its UTF-8 bytes.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

use super::settings::{Mechanism, Sasl};

/// A failed exchange, in words for the cluster's status (never with a secret).
pub type SaslError = String;

/// The client's side of one authentication.
pub struct Exchange {
    mechanism: Mechanism,
    state: State,
}

enum State {
    /// Nothing sent yet.
    Start {
        username: String,
        password: crate::kafka::Sensitive,
        nonce: String,
    },
    /// SCRAM: the client-first message was sent.
    ClientFirst {
        password: crate::kafka::Sensitive,
        nonce: String,
        first_bare: String,
    },
    /// SCRAM: the client-final message was sent; the server's signature is expected.
    ClientFinal {
        server_signature: Vec<u8>,
    },
    Done,
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes in a SaslAuthenticate request.
    Send(Vec<u8>),
    /// Authenticated.
    Done,
}

/// SCRAM's parameters per hash.
struct Scram {
    pbkdf2: pbkdf2::Algorithm,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
}

fn scram(m: Mechanism) -> Option<Scram> {
    match m {
        Mechanism::Plain => None,
        Mechanism::ScramSha256 => Some(Scram {
            pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
            hmac: hmac::HMAC_SHA256,
            digest: &digest::SHA256,
        }),
        Mechanism::ScramSha512 => Some(Scram {
            pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
            hmac: hmac::HMAC_SHA512,
            digest: &digest::SHA512,
        }),
    }
}

/// A fresh client nonce: 24 random bytes, base64 (printable, no comma).
pub fn random_nonce() -> Result<String, SaslError> {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| "no randomness for the SCRAM nonce".to_owned())?;
    Ok(B64.encode(bytes))
}

impl Exchange {
    /// An exchange for `sasl` with the client nonce `nonce` (SCRAM only; see [`random_nonce`]).
    pub fn new(sasl: &Sasl, nonce: String) -> Self {
        Self {
            mechanism: sasl.mechanism,
            state: State::Start {
                username: sasl.username.clone(),
                password: sasl.password.clone(),
                nonce,
            },
        }
    }

    /// The next step, given the broker's last answer (empty before the first request).
    pub fn next(&mut self, answer: &[u8]) -> Result<Step, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let Some(scram) = scram(self.mechanism) else {
            // PLAIN: one message (no authorization identity), then done.
            return Ok(match state {
                State::Start {
                    username, password, ..
                } => {
                    let mut msg = Vec::new();
                    msg.push(0);
                    msg.extend_from_slice(username.as_bytes());
                    msg.push(0);
                    msg.extend_from_slice(password.expose().as_bytes());
                    Step::Send(msg)
                }
                _ => Step::Done,
            });
        };
        match state {
            State::Start {
                username,
                password,
                nonce,
            } => {
                let first_bare = format!("n={},r={nonce}", escape(&username));
                let msg = format!("n,,{first_bare}").into_bytes();
                self.state = State::ClientFirst {
                    password,
                    nonce,
                    first_bare,
                };
                Ok(Step::Send(msg))
            }
            State::ClientFirst {
                password,
                nonce,
                first_bare,
            } => {
                let server_first = std::str::from_utf8(answer)
                    .map_err(|_| "the broker's SCRAM server-first message is not UTF-8")?;
                let (final_msg, server_signature) =
                    client_final(&scram, &password, &nonce, &first_bare, server_first)?;
                self.state = State::ClientFinal { server_signature };
                Ok(Step::Send(final_msg.into_bytes()))
            }
            State::ClientFinal { server_signature } => {
                let server_final = std::str::from_utf8(answer)
                    .map_err(|_| "the broker's SCRAM server-final message is not UTF-8")?;
                if let Some(e) = attribute(server_final, 'e') {
                    return Err(format!("the broker refused the SCRAM proof: {e}"));
                }
                let v = attribute(server_final, 'v')
                    .ok_or("the broker's SCRAM server-final message has no signature")?;
                let v = B64
                    .decode(v)
                    .map_err(|_| "the broker's SCRAM signature is not base64")?;
                if v != server_signature {
                    return Err(
                        "the broker's SCRAM signature does not match: it does not know this password"
                            .into(),
                    );
                }
                Ok(Step::Done)
            }
            State::Done => Ok(Step::Done),
        }
    }
}

/// A SCRAM username: `=` and `,` escaped (RFC 5802 §5.1).
fn escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The value of attribute `name` of a SCRAM message (`a=value,b=value`).
fn attribute(msg: &str, name: char) -> Option<&str> {
    msg.split(',').find_map(|part| {
        let mut chars = part.chars();
        (chars.next() == Some(name) && chars.next() == Some('=')).then(|| &part[2..])
    })
}

/// The client-final message and the server signature to expect.
fn client_final(
    scram: &Scram,
    password: &crate::kafka::Sensitive,
    nonce: &str,
    first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>), SaslError> {
    if let Some(e) = attribute(server_first, 'e') {
        return Err(format!("the broker refused the SCRAM exchange: {e}"));
    }
    let combined = attribute(server_first, 'r').ok_or("SCRAM server-first: no nonce")?;
    if !combined.starts_with(nonce) || combined.len() == nonce.len() {
        return Err("SCRAM server-first: the nonce does not extend ours".into());
    }
    let salt = attribute(server_first, 's').ok_or("SCRAM server-first: no salt")?;
    let salt = B64
        .decode(salt)
        .map_err(|_| "SCRAM server-first: the salt is not base64")?;
    let iterations = attribute(server_first, 'i')
        .and_then(|i| i.parse::<u32>().ok())
        .and_then(NonZeroU32::new)
        .ok_or("SCRAM server-first: no iteration count")?;
    let mut salted = vec![0u8; scram.digest.output_len()];
    pbkdf2::derive(
        scram.pbkdf2,
        iterations,
        &salt,
        password.expose().as_bytes(),
        &mut salted,
    );
    let salted = hmac::Key::new(scram.hmac, &salted);
    let client_key = hmac::sign(&salted, b"Client Key");
    let stored_key = digest::digest(scram.digest, client_key.as_ref());
    let without_proof = format!("c=biws,r={combined}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let client_signature = hmac::sign(
        &hmac::Key::new(scram.hmac, stored_key.as_ref()),
        auth_message.as_bytes(),
    );
    let proof: Vec<u8> = client_key
        .as_ref()
        .iter()
        .zip(client_signature.as_ref())
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = hmac::sign(&salted, b"Server Key");
    let server_signature = hmac::sign(
        &hmac::Key::new(scram.hmac, server_key.as_ref()),
        auth_message.as_bytes(),
    );
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature.as_ref().to_vec(),
    ))
}

/// The server's side of SCRAM, for the tests' fake brokers: the server-first message for a
/// client-first one, and the server-final message (or `e=` error) for a client-final one.
#[cfg(test)]
pub(crate) mod server {
    use super::*;

    pub struct ScramServer {
        pub mechanism: Mechanism,
        pub password: String,
        pub salt: Vec<u8>,
        pub iterations: u32,
        pub nonce_suffix: String,
        first_bare: String,
        server_first: String,
    }

    impl ScramServer {
        pub fn new(mechanism: Mechanism, password: &str) -> Self {
            Self {
                mechanism,
                password: password.into(),
                salt: b"tributary-salt".to_vec(),
                iterations: 4096,
                nonce_suffix: "srv".into(),
                first_bare: String::new(),
                server_first: String::new(),
            }
        }

        pub fn first(&mut self, client_first: &[u8]) -> Vec<u8> {
            let text = std::str::from_utf8(client_first).unwrap();
            self.first_bare = text.strip_prefix("n,,").unwrap().to_owned();
            let nonce = attribute(&self.first_bare, 'r').unwrap();
            self.server_first = format!(
                "r={nonce}{},s={},i={}",
                self.nonce_suffix,
                B64.encode(&self.salt),
                self.iterations
            );
            self.server_first.clone().into_bytes()
        }

        /// `Ok(server-final)` when the proof matches the password, else `Err(())`.
        pub fn last(&self, final_message: &[u8]) -> Result<Vec<u8>, ()> {
            let text = std::str::from_utf8(final_message).unwrap();
            let (without_proof, proof) = text.rsplit_once(",p=").unwrap();
            let nonce = attribute(&self.first_bare, 'r').unwrap();
            let password = crate::kafka::Sensitive::new(self.password.clone());
            let (expected, signature) = client_final(
                &scram(self.mechanism).unwrap(),
                &password,
                nonce,
                &self.first_bare,
                &self.server_first,
            )
            .unwrap();
            if expected != format!("{without_proof},p={proof}") {
                return Err(());
            }
            Ok(format!("v={}", B64.encode(signature)).into_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::Sensitive;

    fn sasl(mechanism: Mechanism, user: &str, password: &str) -> Sasl {
        Sasl {
            mechanism,
            username: user.into(),
            password: Sensitive::new(password),
        }
    }

    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange, byte for byte.
    #[test]
    fn scram_sha_256_matches_rfc_7677() {
        let mut x = Exchange::new(
            &sasl(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(
            x.next(b"").unwrap(),
            Step::Send(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO".to_vec())
        );
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        assert_eq!(
            x.next(server_first).unwrap(),
            Step::Send(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
                    .to_vec()
            )
        );
        assert_eq!(
            x.next(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
                .unwrap(),
            Step::Done
        );
    }

    /// The same exchange with a server that signs with another password: refused.
    #[test]
    fn a_server_signature_that_does_not_match_is_refused() {
        let mut x = Exchange::new(
            &sasl(Mechanism::ScramSha256, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        x.next(b"").unwrap();
        x.next(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        let e = x
            .next(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let mut x = Exchange::new(&sasl(Mechanism::ScramSha256, "u", "p"), "abc".into());
        x.next(b"").unwrap();
        let e = x.next(b"r=xyz,s=AAAA,i=1").unwrap_err();
        assert!(e.contains("nonce"), "{e}");
    }

    /// SCRAM-SHA-512 has no RFC example; these values were computed independently with
    /// Python's hashlib (`pbkdf2_hmac('sha512', b'pencil', salt, 4096)`, `hmac`), for RFC
    /// 7677's messages.
    #[test]
    fn scram_sha_512_matches_an_independent_computation() {
        let mut x = Exchange::new(
            &sasl(Mechanism::ScramSha512, "user", "pencil"),
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        x.next(b"").unwrap();
        let Step::Send(last) = x
            .next(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap()
        else {
            panic!("a client-final message")
        };
        assert_eq!(String::from_utf8(last).unwrap(), SHA512_FINAL);
        assert_eq!(x.next(SHA512_SERVER_FINAL.as_bytes()).unwrap(), Step::Done);
    }

    const SHA512_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=gMGXRcevScNtxZ6/8lQYpGtnsNAc3mGcmNomv+xnoOMw+3R2xNJdMNnzMlTN8PPC6wdp6dybEmDYXYTxwnYPJQ==";
    const SHA512_SERVER_FINAL: &str = "v=ZQnYEgWQMFmmsM8aQMF0nDDCy/AgCzkwk8CmMZYcMg0vSVlKDanekLtifDSeVGT4+5ZxXnJq199RVG2rR7N7Zw==";

    #[test]
    fn plain_sends_one_message_and_usernames_are_escaped_for_scram() {
        let mut x = Exchange::new(&sasl(Mechanism::Plain, "svc", "pw"), String::new());
        assert_eq!(x.next(b"").unwrap(), Step::Send(b"\0svc\0pw".to_vec()));
        assert_eq!(x.next(b"").unwrap(), Step::Done);
        assert_eq!(escape("a=b,c"), "a=3Db=2Cc");
    }

    #[test]
    fn the_test_server_and_the_client_agree_and_a_wrong_password_is_refused() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let mut server = server::ScramServer::new(m, "right");
            let mut good = Exchange::new(&sasl(m, "u", "right"), random_nonce().unwrap());
            let Step::Send(first) = good.next(b"").unwrap() else {
                panic!()
            };
            let Step::Send(last) = good.next(&server.first(&first)).unwrap() else {
                panic!()
            };
            let fin = server.last(&last).unwrap();
            assert_eq!(good.next(&fin).unwrap(), Step::Done);

            let mut bad = Exchange::new(&sasl(m, "u", "wrong"), random_nonce().unwrap());
            let Step::Send(first) = bad.next(b"").unwrap() else {
                panic!()
            };
            let Step::Send(last) = bad.next(&server.first(&first)).unwrap() else {
                panic!()
            };
            assert!(server.last(&last).is_err());
        }
    }
}
