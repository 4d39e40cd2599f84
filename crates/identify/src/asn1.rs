//! BER-encoded protocols read with the rusticata parsers: LDAP (and CLDAP) with ldap-parser,
//! SNMP v1/v2c/v3 with snmp-parser.

use ldap_parser::ldap::{LdapMessage, ProtocolOp};
use ldap_parser::FromBer;
use snmp_parser::{parse_snmp_generic_message, PduType, SnmpGenericMessage};

use crate::{App, Detail, Guess, Input};

/// A BER SEQUENCE whose declared length fits what we have (or runs past the capture).
fn sequence(d: &[u8]) -> bool {
    d.len() >= 2 && d[0] == 0x30
}

pub(crate) fn ldap<'a>(input: &Input<'a>) -> Guess<'a> {
    for side in input.sides() {
        let d = input.data[side];
        if !sequence(d) {
            continue;
        }
        if let Ok((_, msg)) = LdapMessage::from_ber(d) {
            let op = op_name(&msg.protocol_op);
            let detail = Detail {
                ldap_op: Some(op.into()),
                ..Detail::default()
            };
            return Guess::yes(App::Ldap, detail, true);
        }
    }
    Guess::No
}

fn op_name(op: &ProtocolOp<'_>) -> &'static str {
    match op {
        ProtocolOp::BindRequest(_) => "bind-request",
        ProtocolOp::BindResponse(_) => "bind-response",
        ProtocolOp::UnbindRequest => "unbind-request",
        ProtocolOp::SearchRequest(_) => "search-request",
        ProtocolOp::SearchResultEntry(_) => "search-result-entry",
        ProtocolOp::SearchResultDone(_) => "search-result-done",
        ProtocolOp::SearchResultReference(_) => "search-result-reference",
        ProtocolOp::ModifyRequest(_) => "modify-request",
        ProtocolOp::ModifyResponse(_) => "modify-response",
        ProtocolOp::AddRequest(_) => "add-request",
        ProtocolOp::AddResponse(_) => "add-response",
        ProtocolOp::DelRequest(_) => "del-request",
        ProtocolOp::DelResponse(_) => "del-response",
        ProtocolOp::ModDnRequest(_) => "moddn-request",
        ProtocolOp::ModDnResponse(_) => "moddn-response",
        ProtocolOp::CompareRequest(_) => "compare-request",
        ProtocolOp::CompareResponse(_) => "compare-response",
        ProtocolOp::AbandonRequest(_) => "abandon-request",
        ProtocolOp::ExtendedRequest(_) => "extended-request",
        ProtocolOp::ExtendedResponse(_) => "extended-response",
        ProtocolOp::IntermediateResponse(_) => "intermediate-response",
    }
}

fn pdu_name(t: PduType) -> &'static str {
    match t {
        PduType::GetRequest => "get-request",
        PduType::GetNextRequest => "get-next-request",
        PduType::Response => "response",
        PduType::SetRequest => "set-request",
        PduType::TrapV1 => "trap",
        PduType::GetBulkRequest => "get-bulk-request",
        PduType::InformRequest => "inform-request",
        PduType::TrapV2 => "trap-v2",
        PduType::Report => "report",
        _ => "unknown",
    }
}

pub(crate) fn snmp<'a>(input: &Input<'a>) -> Guess<'a> {
    for side in input.sides() {
        let d = input.data[side];
        if !sequence(d) {
            continue;
        }
        let Ok((_, msg)) = parse_snmp_generic_message(d) else {
            continue;
        };
        let (version, pdu) = match &msg {
            SnmpGenericMessage::V1(m) => ("1", Some(pdu_name(m.pdu_type()))),
            SnmpGenericMessage::V2(m) => ("2c", Some(pdu_name(m.pdu_type()))),
            SnmpGenericMessage::V3(m) => (
                "3",
                match &m.data {
                    snmp_parser::ScopedPduData::Plaintext(p) => Some(pdu_name(p.data.pdu_type())),
                    snmp_parser::ScopedPduData::Encrypted(_) => None,
                },
            ),
        };
        let detail = Detail {
            snmp_version: Some(version.into()),
            snmp_pdu: pdu.map(Into::into),
            ..Detail::default()
        };
        return Guess::yes(App::Snmp, detail, true);
    }
    Guess::No
}
