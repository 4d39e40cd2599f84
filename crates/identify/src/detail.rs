//! What the payload said beyond the protocol's name: [`Detail`] to build and read it,
//! [`PackedDetail`] to keep it.
//!
//! A flow keeps its detail for its whole life, and most fields are unset: a `Detail` is 560
//! bytes of options whatever was seen, and an owned string is one more allocation. While a
//! recogniser builds it, its text borrows the payload (or a constant); kept, it is packed: the
//! fields that were seen, one after another in one allocation sized to them (a SIP method, a
//! dozen bytes; a whole TLS handshake's detail, about 200). Unpacked, its text is owned.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A detail's text: borrowed from the payload (or a constant) while a recogniser builds the
/// detail, so that building one allocates only what the wire did not hold as is (a lossy
/// conversion, a computed hash); owned once unpacked.
pub type Text<'a> = Cow<'a, str>;

/// One field of a packed detail, as its writers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Text(&'a str),
    Flag(bool),
    Num(u16),
    /// A list of strings (ALPN protocols), in order.
    Texts(Texts<'a>),
}

/// The strings of a [`Value::Texts`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Texts<'a>(&'a [u8]);

impl<'a> Iterator for Texts<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        let (item, rest) = entry(self.0)?;
        self.0 = rest;
        Some(as_str(item))
    }
}

/// A value's length as it is packed: a `u32`, little-endian. A string is at most MAX_TEXT
/// characters and a list has at most 16 of them, far below 4 GiB.
fn put_len(len: usize, out: &mut Vec<u8>) {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
}

/// A list item: its length and its bytes.
fn put_bytes(b: &[u8], out: &mut Vec<u8>) {
    put_len(b.len(), out);
    out.extend_from_slice(b);
}

/// The first length-prefixed value of `b` and what follows it.
fn entry(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let rest = &b[4..];
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// Packed text is only ever written from a `String`: it is valid UTF-8.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// A type a detail field holds, and how it is packed.
trait Field: Sized {
    /// Bytes `put` writes.
    fn size(&self) -> usize;
    fn put(&self, out: &mut Vec<u8>);
    /// The type unpacked (text owned, the rest the same).
    type Owned;
    fn get(b: &[u8]) -> Self::Owned;
    fn value(b: &[u8]) -> Value<'_>;
}

impl Field for Text<'_> {
    fn size(&self) -> usize {
        self.len()
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    type Owned = Text<'static>;
    fn get(b: &[u8]) -> Text<'static> {
        Cow::Owned(as_str(b).to_owned())
    }
    fn value(b: &[u8]) -> Value<'_> {
        Value::Text(as_str(b))
    }
}

impl Field for bool {
    fn size(&self) -> usize {
        1
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    type Owned = bool;
    fn get(b: &[u8]) -> bool {
        b.first() == Some(&1)
    }
    fn value(b: &[u8]) -> Value<'_> {
        Value::Flag(bool::get(b))
    }
}

impl Field for u8 {
    fn size(&self) -> usize {
        1
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.push(*self);
    }
    type Owned = u8;
    fn get(b: &[u8]) -> u8 {
        b.first().copied().unwrap_or_default()
    }
    fn value(b: &[u8]) -> Value<'_> {
        Value::Num(u8::get(b).into())
    }
}

impl Field for u16 {
    fn size(&self) -> usize {
        2
    }
    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    type Owned = u16;
    fn get(b: &[u8]) -> u16 {
        b.get(..2)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u16::from_le_bytes)
    }
    fn value(b: &[u8]) -> Value<'_> {
        Value::Num(u16::get(b))
    }
}

impl Field for Vec<Text<'_>> {
    fn size(&self) -> usize {
        self.iter().map(|s| 4 + s.len()).sum()
    }
    fn put(&self, out: &mut Vec<u8>) {
        for s in self {
            put_bytes(s.as_bytes(), out);
        }
    }
    type Owned = Vec<Text<'static>>;
    fn get(b: &[u8]) -> Vec<Text<'static>> {
        Texts(b).map(|t| Cow::Owned(t.to_owned())).collect()
    }
    fn value(b: &[u8]) -> Value<'_> {
        Value::Texts(Texts(b))
    }
}

/// The fields of [`Detail`] in order, and their packing: each field once, so a field added
/// to the struct is packed, unpacked and written with no other change.
macro_rules! detail {
    ($( $(#[$doc:meta])* $name:ident: $ty:ty, )*) => {
        /// What the payload said, beyond the protocol's name. Only what was seen is set.
        ///
        /// Strings come from the wire: they are cut to [`MAX_TEXT`](crate::MAX_TEXT)
        /// characters and must be escaped before they reach a terminal.
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct Detail<'a> {
            $(
                $(#[$doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $name: Option<$ty>,
            )*
        }

        /// The fields' names, in order: a packed field's number indexes them.
        const NAMES: &[&str] = &[$(stringify!($name)),*];

        impl<'a> Detail<'a> {
            /// Each field's reader, by field number.
            const VALUES: &'static [fn(&[u8]) -> Value<'_>] = &[$(<$ty as Field>::value),*];

            /// Nothing was seen.
            pub fn is_empty(&self) -> bool {
                true $(&& self.$name.is_none())*
            }

            /// Bytes `pack_into` writes.
            fn packed_len(&self) -> usize {
                0 $(+ self.$name.as_ref().map_or(0, |v| 5 + Field::size(v)))*
            }

            fn pack_into(&self, out: &mut Vec<u8>) {
                let mut field = 0u8;
                $(
                    if let Some(v) = &self.$name {
                        out.push(field);
                        put_len(Field::size(v), out);
                        v.put(out);
                    }
                    field += 1;
                )*
                let _ = field;
            }

            fn unpack(p: &PackedDetail) -> Detail<'static> {
                let mut d = Detail::default();
                let mut entries = p.entries().peekable();
                let mut field = 0u8;
                $(
                    if let Some((_, b)) = entries.next_if(|e| e.0 == field) {
                        d.$name = Some(<$ty as Field>::get(b));
                    }
                    field += 1;
                )*
                let _ = field;
                d
            }
        }
    };
}

detail! {
    // TLS
    tls_version: Text<'a>,
    sni: Text<'a>,
    /// ALPN protocols the client offered, in its order.
    alpn: Vec<Text<'a>>,
    /// ALPN protocol the server chose.
    alpn_chosen: Text<'a>,
    /// Cipher suite the server chose (IANA name, or hex when unknown).
    cipher: Text<'a>,
    /// TLS 1.2 and earlier: the server asked for a client certificate.
    cert_request: bool,
    /// TLS 1.2 and earlier: the client sent a certificate (a non-empty Certificate message).
    client_cert: bool,
    /// The client authenticated with a certificate. Unknown (absent) for TLS 1.3, where the
    /// certificates are encrypted, for resumed sessions and for handshakes not seen whole.
    mutual_auth: bool,
    /// A TLS 1.3 handshake: certificates are encrypted, mutual_auth cannot be seen.
    tls13: bool,
    /// The server answered with HelloRetryRequest.
    hello_retry: bool,
    /// Abbreviated handshake (session resumption): no certificates exchanged.
    resumed: bool,
    ja3: Text<'a>,
    ja4: Text<'a>,
    // XMPP
    /// Default namespace of the stream: jabber:client or jabber:server.
    xmpp_ns: Text<'a>,
    /// STARTTLS (XMPP) or SSLRequest (PostgreSQL): "offered", "taken" or "refused".
    starttls: Text<'a>,
    // HTTP
    http_method: Text<'a>,
    http_host: Text<'a>,
    http_path: Text<'a>,
    http_status: u16,
    /// XMPP over HTTP (BOSH, XEP-0124/0206).
    bosh: bool,
    // SIP
    sip_method: Text<'a>,
    sip_status: u16,
    // LDAP
    ldap_op: Text<'a>,
    // SNMP (the community string is a password and is never reported)
    snmp_version: Text<'a>,
    snmp_pdu: Text<'a>,
    // DNS and mDNS
    dns_qname: Text<'a>,
    dns_qtype: u16,
    // NTP
    ntp_version: u8,
    ntp_mode: u8,
    // ISAKMP / IKE
    ike_version: u8,
    ike_exchange: Text<'a>,
    /// UDP-encapsulated ESP (NAT traversal, RFC 3948) on 4500.
    esp_in_udp: bool,
    // SSH
    ssh_client: Text<'a>,
    ssh_server: Text<'a>,
    // Databases, RMI, Redis
    /// First message type of the database protocol (startup, ssl-request, connect, prelogin, ...).
    db_message: Text<'a>,
    redis_command: Text<'a>,
    // ICMP
    icmp_type: u8,
    icmp_code: u8,
}

impl Detail<'_> {
    /// The fields that were set, packed; `None` when nothing was seen.
    pub fn pack(&self) -> Option<PackedDetail> {
        // Sized first: one allocation, which the boxed slice keeps. Every field set takes at
        // least its 5-byte head, so nothing to pack is a length of 0 (no pass of its own).
        let len = self.packed_len();
        if len == 0 {
            return None;
        }
        let mut out = Vec::with_capacity(len);
        self.pack_into(&mut out);
        debug_assert_eq!(out.len(), len, "packed_len and pack_into disagree");
        Some(PackedDetail(out.into_boxed_slice()))
    }
}

/// A [`Detail`] as a flow keeps it: each field that was set as its number, its length and
/// its bytes, in the struct's order, in one allocation. Never empty.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedDetail(Box<[u8]>);

impl PackedDetail {
    /// The detail again, as a struct.
    pub fn unpack(&self) -> Detail<'static> {
        Detail::unpack(self)
    }

    /// The fields that were set, by name, in the struct's order (the order serde writes).
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> + '_ {
        self.entries().filter_map(|(field, b)| {
            let i = usize::from(field);
            Some((*NAMES.get(i)?, Detail::VALUES.get(i)?(b)))
        })
    }

    /// The packed bytes (never empty).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// One field, when it was set: read in place, nothing unpacked.
    pub fn get(&self, name: &str) -> Option<Value<'_>> {
        let i = NAMES.iter().position(|n| *n == name)?;
        let (_, b) = self.entries().find(|e| usize::from(e.0) == i)?;
        Some(Detail::VALUES[i](b))
    }

    /// (field number, value bytes), in order.
    fn entries(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        let mut rest = &self.0[..];
        std::iter::from_fn(move || {
            let (&field, after) = rest.split_first()?;
            let (value, next) = entry(after)?;
            rest = next;
            Some((field, value))
        })
    }
}

impl std::fmt::Debug for PackedDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.unpack().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field set, strings with what JSON must escape and more than one byte a character.
    pub(crate) fn full() -> Detail<'static> {
        let s = |x: &str| Some(format!("{x} \"q\" \\ é\u{1}").into());
        Detail {
            tls_version: s("1.2"),
            sni: s("imp.example.com"),
            alpn: Some(vec!["h2".into(), "".into(), "x\u{7f}".into()]),
            alpn_chosen: s("h2"),
            cipher: s("TLS_AES_128_GCM_SHA256"),
            cert_request: Some(true),
            client_cert: Some(false),
            mutual_auth: Some(true),
            tls13: Some(false),
            hello_retry: Some(true),
            resumed: Some(false),
            ja3: s("ja3"),
            ja4: s("ja4"),
            xmpp_ns: s("jabber:client"),
            starttls: s("taken"),
            http_method: s("GET"),
            http_host: s("host"),
            http_path: s("/"),
            http_status: Some(u16::MAX),
            bosh: Some(true),
            sip_method: s("INVITE"),
            sip_status: Some(180),
            ldap_op: s("bind"),
            snmp_version: s("2c"),
            snmp_pdu: s("get"),
            dns_qname: s("example.com"),
            dns_qtype: Some(0),
            ntp_version: Some(4),
            ntp_mode: Some(u8::MAX),
            ike_version: Some(2),
            ike_exchange: s("sa-init"),
            esp_in_udp: Some(true),
            ssh_client: s("SSH-2.0-OpenSSH"),
            ssh_server: s("SSH-2.0-x"),
            db_message: s("startup"),
            redis_command: s("SET"),
            icmp_type: Some(8),
            icmp_code: Some(0),
        }
    }

    #[test]
    fn packing_keeps_every_field() {
        let d = full();
        assert_eq!(d.pack().map(|p| p.unpack()), Some(d));
        let one = Detail {
            sip_status: Some(200),
            ..Detail::default()
        };
        let p = one.pack();
        assert_eq!(p.as_ref().map(PackedDetail::unpack), Some(one));
        assert_eq!(
            p.map(|p| p
                .fields()
                .map(|(n, v)| format!("{n}={v:?}"))
                .collect::<Vec<_>>()),
            Some(vec!["sip_status=Num(200)".to_string()])
        );
        let p = full().pack();
        let get = |name| p.as_ref().and_then(|p| p.get(name));
        assert_eq!(get("http_status"), Some(Value::Num(u16::MAX)));
        assert_eq!(get("tls13"), Some(Value::Flag(false)));
        assert_eq!(
            get("redis_command"),
            Some(Value::Text("SET \"q\" \\ é\u{1}"))
        );
        assert_eq!(get("nonesuch"), None);
    }

    #[test]
    fn nothing_seen_packs_to_nothing() {
        assert!(Detail::default().is_empty());
        assert_eq!(Detail::default().pack(), None);
        let empty_list = Detail {
            alpn: Some(vec![]),
            ..Detail::default()
        };
        assert!(!empty_list.is_empty());
        assert_eq!(empty_list.pack().map(|p| p.unpack()), Some(empty_list));
    }

    #[test]
    fn fields_come_in_the_order_serde_writes_them() {
        let d = full();
        let json = serde_json::to_string(&d).unwrap_or_default();
        let names: Vec<&str> = d
            .pack()
            .iter()
            .flat_map(|p| p.fields())
            .map(|f| f.0)
            .collect();
        let at: Vec<Option<usize>> = names
            .iter()
            .map(|n| json.find(&format!("\"{n}\":")))
            .collect();
        assert_eq!(names.len(), 38);
        assert!(at.iter().all(Option::is_some), "{names:?} in {json}");
        assert!(at.is_sorted(), "{names:?} in {json}");
    }
}
