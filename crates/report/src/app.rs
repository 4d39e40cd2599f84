//! One-line summaries of what a flow's payload was identified as, safe for a terminal.

use flowdoc_flow::{Flow, Identified};

/// Text from a capture made safe for a terminal: control characters (escape sequences, bells,
/// carriage returns) are shown escaped, as fd does.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// "tls 1.2 sni=imp.example.com mutual-auth", "sip INVITE", "http GET imp:7335/httpbinding bosh".
pub fn summary(id: &Identified) -> String {
    let Some(app) = id.app else {
        return String::new();
    };
    let d = id.detail();
    let mut parts: Vec<String> = vec![app.as_str().to_string()];
    let mut push = |s: Option<String>| {
        if let Some(s) = s {
            parts.push(s);
        }
    };
    push(d.tls_version.clone().map(String::from));
    push(d.sni.as_ref().map(|s| format!("sni={s}")));
    push(d.alpn_chosen.as_ref().map(|s| format!("alpn={s}")));
    push(
        d.mutual_auth
            .map(|m| if m { "mutual-auth" } else { "server-auth-only" }.into()),
    );
    push(d.resumed.map(|_| "resumed".into()));
    push(d.xmpp_ns.clone().map(String::from));
    push(d.starttls.as_ref().map(|s| format!("starttls={s}")));
    push(d.sip_method.clone().map(String::from));
    push(d.sip_status.map(|s| s.to_string()));
    push(d.http_method.clone().map(String::from));
    push(match (&d.http_host, &d.http_path) {
        (Some(h), Some(p)) => Some(format!("{h}{p}")),
        (None, Some(p)) => Some(p.to_string()),
        _ => None,
    });
    push(
        d.http_status
            .filter(|_| d.http_method.is_none())
            .map(|s| s.to_string()),
    );
    push(d.bosh.map(|_| "bosh".into()));
    push(
        d.ssh_client
            .clone()
            .or_else(|| d.ssh_server.clone())
            .map(String::from),
    );
    push(d.ldap_op.clone().map(String::from));
    push(d.snmp_version.as_ref().map(|v| format!("v{v}")));
    push(d.snmp_pdu.clone().map(String::from));
    push(d.dns_qname.clone().map(String::from));
    push(d.ntp_version.map(|v| format!("v{v}")));
    push(d.ike_version.map(|v| format!("ikev{v}")));
    push(d.ike_exchange.clone().map(String::from));
    push(d.esp_in_udp.map(|_| "esp-in-udp".into()));
    push(d.db_message.clone().map(String::from));
    push(d.redis_command.clone().map(String::from));
    push(d.icmp_type.map(|t| format!("type {t}")));
    escape(&parts.join(" "))
}

/// The protocol name for grouping: the app, "opaque" (payload, not recognised) or "-" (none).
pub fn app_name(f: &Flow) -> &'static str {
    match f.app() {
        Some(a) => a.as_str(),
        None if f.carried_payload() => "opaque",
        None => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert_eq!(escape("a\x1b[2Jb\r\n"), "a\\u{1b}[2Jb\\r\\n");
        assert_eq!(escape("imp.example.com"), "imp.example.com");
    }
}
