//! Stable one-line renderings of IKE messages, in strongSwan's notation
//! (`IKE_AUTH request 1 [ IDi IDr AUTH SA TSi TSr ]`), for the simulator's
//! traces and the logs.

use crate::wire::ike::{ExchangeType, Header, NotifyType, Payload, ProtocolId};

/// The exchange name of RFC 7296 §3.1.
pub fn exchange_name(t: ExchangeType) -> String {
    match t {
        ExchangeType::IkeSaInit => "IKE_SA_INIT".into(),
        ExchangeType::IkeAuth => "IKE_AUTH".into(),
        ExchangeType::CreateChildSa => "CREATE_CHILD_SA".into(),
        ExchangeType::Informational => "INFORMATIONAL".into(),
        ExchangeType::Unknown(n) => format!("EXCHANGE({n})"),
    }
}

/// strongSwan's short notify names, where it has one.
pub fn notify_name(t: NotifyType) -> String {
    let s = match t {
        NotifyType::UnsupportedCriticalPayload => "UNSUPP_CRIT",
        NotifyType::InvalidIkeSpi => "INVAL_IKE_SPI",
        NotifyType::InvalidMajorVersion => "INVAL_MAJOR",
        NotifyType::InvalidSyntax => "INVAL_SYN",
        NotifyType::InvalidMessageId => "INVAL_MID",
        NotifyType::InvalidSpi => "INVAL_SPI",
        NotifyType::NoProposalChosen => "NO_PROP",
        NotifyType::InvalidKePayload => "INVAL_KE",
        NotifyType::AuthenticationFailed => "AUTH_FAILED",
        NotifyType::TsUnacceptable => "TS_UNACCEPT",
        NotifyType::TemporaryFailure => "TEMP_FAIL",
        NotifyType::ChildSaNotFound => "CHILD_SA_NOT_FOUND",
        NotifyType::InitialContact => "INIT_CONTACT",
        NotifyType::NatDetectionSourceIp => "NATD_S_IP",
        NotifyType::NatDetectionDestinationIp => "NATD_D_IP",
        NotifyType::Cookie => "COOKIE",
        NotifyType::UseTransportMode => "USE_TRANSP",
        NotifyType::RekeySa => "REKEY_SA",
        NotifyType::EspTfcPaddingNotSupported => "ESP_TFC_PAD_N",
        NotifyType::NonFirstFragmentsAlso => "NON_FIRST_FRAG",
        NotifyType::MobikeSupported => "MOBIKE_SUP",
        NotifyType::MultipleAuthSupported => "MULT_AUTH",
        NotifyType::EapOnlyAuthentication => "EAP_ONLY",
        NotifyType::Ikev2FragmentationSupported => "FRAG_SUP",
        NotifyType::SignatureHashAlgorithms => "HASH_ALG",
        NotifyType::RedirectSupported => "REDIR_SUP",
        other => return format!("{}", u16::from(other)),
    };
    s.into()
}

fn payload_name(p: &Payload) -> String {
    match p {
        Payload::Sa(_) => "SA".into(),
        Payload::Ke(_) => "KE".into(),
        Payload::IdI(_) => "IDi".into(),
        Payload::IdR(_) => "IDr".into(),
        Payload::Cert(_) => "CERT".into(),
        Payload::CertReq(_) => "CERTREQ".into(),
        Payload::Auth(_) => "AUTH".into(),
        Payload::Nonce(_) => "No".into(),
        Payload::Notify(n) => format!("N({})", notify_name(n.notify_type)),
        Payload::Delete(d) => match d.protocol {
            ProtocolId::Ike => "D(IKE)".into(),
            ProtocolId::Esp => format!("D(ESP x{})", d.spis.len()),
            other => format!("D({})", u8::from(other)),
        },
        Payload::VendorId(_) => "V".into(),
        Payload::TsI(_) => "TSi".into(),
        Payload::TsR(_) => "TSr".into(),
        Payload::Encrypted(_) => "SK".into(),
        Payload::EncryptedFragment(_) => "SKF".into(),
        Payload::Config(_) => "CP".into(),
        Payload::Unknown(u) => {
            format!("U({}{})", u.payload_type, if u.critical { "!" } else { "" })
        }
    }
}

/// `EXCHANGE request|response ID [ PAYLOADS ]`; `payloads` are the inner
/// ones for an encrypted message.
pub fn describe(header: &Header, payloads: &[Payload]) -> String {
    let kind = if header.flags.response() {
        "response"
    } else {
        "request"
    };
    let names: Vec<String> = payloads.iter().map(payload_name).collect();
    format!(
        "{} {} {} [ {} ]",
        exchange_name(header.exchange_type),
        kind,
        header.message_id,
        names.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ike::{Delete, Flags, Notify};

    #[test]
    fn renders_like_strongswan() {
        let h = Header {
            spi_i: 1,
            spi_r: 2,
            major_version: 2,
            minor_version: 0,
            exchange_type: ExchangeType::Informational,
            flags: Flags(Flags::RESPONSE),
            message_id: 3,
        };
        let p = vec![
            Payload::Delete(Delete {
                protocol: ProtocolId::Esp,
                spi_size: 4,
                spis: vec![vec![1, 2, 3, 4]],
            }),
            Payload::Notify(Notify::new(NotifyType::Unknown(40000), vec![])),
        ];
        assert_eq!(
            describe(&h, &p),
            "INFORMATIONAL response 3 [ D(ESP x1) N(40000) ]"
        );
        assert_eq!(exchange_name(ExchangeType::Unknown(99)), "EXCHANGE(99)");
    }
}
