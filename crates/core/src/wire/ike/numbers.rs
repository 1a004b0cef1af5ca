//! Assigned numbers of IKEv2 (RFC 7296 §3, IANA's IKEv2 registries):
//! exchange, payload, transform, notify, ID and traffic selector types.
enum_with_unknown! {
    /// Exchange types (RFC 7296 §3.1).
    pub enum ExchangeType(u8) {
        IkeSaInit = 34,
        IkeAuth = 35,
        CreateChildSa = 36,
        Informational = 37,
    }
}

enum_with_unknown! {
    /// Payload types (RFC 7296 §3.2; Encrypted Fragment: RFC 7383 §2.5).
    pub enum PayloadType(u8) {
        /// "No Next Payload": ends a chain.
        NoNext = 0,
        SecurityAssociation = 33,
        KeyExchange = 34,
        IdInitiator = 35,
        IdResponder = 36,
        Certificate = 37,
        CertificateRequest = 38,
        Authentication = 39,
        Nonce = 40,
        Notify = 41,
        Delete = 42,
        VendorId = 43,
        TsInitiator = 44,
        TsResponder = 45,
        Encrypted = 46,
        Configuration = 47,
        Eap = 48,
        EncryptedFragment = 53,
    }
}

enum_with_unknown! {
    /// Protocol IDs of proposals, notifies and deletes (RFC 7296 §3.3.1).
    pub enum ProtocolId(u8) {
        /// Sent when no SPI is carried (Notify, §3.10).
        Unspecified = 0,
        Ike = 1,
        Ah = 2,
        Esp = 3,
    }
}

enum_with_unknown! {
    /// Transform type 1, encryption algorithm (RFC 7296 §3.3.2, IANA
    /// "Transform Type 1"; AES-GCM: RFC 4106/5282).
    pub enum EncrId(u16) {
        TripleDes = 3,
        Null = 11,
        AesCbc = 12,
        AesCtr = 13,
        AesCcm8 = 14,
        AesCcm12 = 15,
        AesCcm16 = 16,
        AesGcm8 = 18,
        AesGcm12 = 19,
        AesGcm16 = 20,
        ChaCha20Poly1305 = 28,
    }
}

impl EncrId {
    /// Whether this is a combined-mode (AEAD) cipher, which takes no
    /// integrity transform (RFC 5282 §8).
    pub fn is_aead(self) -> bool {
        matches!(
            self,
            EncrId::AesCcm8
                | EncrId::AesCcm12
                | EncrId::AesCcm16
                | EncrId::AesGcm8
                | EncrId::AesGcm12
                | EncrId::AesGcm16
                | EncrId::ChaCha20Poly1305
        )
    }
}

enum_with_unknown! {
    /// Transform type 2, pseudorandom function (RFC 7296 §3.3.2; SHA-2: RFC 4868).
    pub enum PrfId(u16) {
        HmacMd5 = 1,
        HmacSha1 = 2,
        Aes128Xcbc = 4,
        HmacSha256 = 5,
        HmacSha384 = 6,
        HmacSha512 = 7,
        Aes128Cmac = 8,
    }
}

enum_with_unknown! {
    /// Transform type 3, integrity algorithm (RFC 7296 §3.3.2; SHA-2: RFC 4868).
    pub enum IntegId(u16) {
        None = 0,
        HmacMd5_96 = 1,
        HmacSha1_96 = 2,
        AesXcbc96 = 5,
        AesCmac96 = 8,
        HmacSha256_128 = 12,
        HmacSha384_192 = 13,
        HmacSha512_256 = 14,
    }
}

enum_with_unknown! {
    /// Transform type 4, Diffie-Hellman group (RFC 7296 §3.3.2; MODP: RFC 3526;
    /// ECP: RFC 5903; Curve25519/448: RFC 8031).
    pub enum DhId(u16) {
        None = 0,
        Modp768 = 1,
        Modp1024 = 2,
        Modp1536 = 5,
        Modp2048 = 14,
        Modp3072 = 15,
        Modp4096 = 16,
        Modp6144 = 17,
        Modp8192 = 18,
        Ecp256 = 19,
        Ecp384 = 20,
        Ecp521 = 21,
        Curve25519 = 31,
        Curve448 = 32,
    }
}

enum_with_unknown! {
    /// Transform type 5, extended sequence numbers (RFC 7296 §3.3.2).
    pub enum EsnId(u16) {
        NoEsn = 0,
        Esn = 1,
    }
}

enum_with_unknown! {
    /// Identification types (RFC 7296 §3.5).
    pub enum IdType(u8) {
        Ipv4Addr = 1,
        Fqdn = 2,
        Rfc822Addr = 3,
        Ipv6Addr = 5,
        DerAsn1Dn = 9,
        DerAsn1Gn = 10,
        KeyId = 11,
    }
}

enum_with_unknown! {
    /// Authentication methods (RFC 7296 §3.8; 14: RFC 7427).
    pub enum AuthMethod(u8) {
        RsaSignature = 1,
        SharedKeyMic = 2,
        DssSignature = 3,
        EcdsaSha256P256 = 9,
        EcdsaSha384P384 = 10,
        EcdsaSha512P521 = 11,
        DigitalSignature = 14,
    }
}

enum_with_unknown! {
    /// Notify message types (RFC 7296 §3.10.1; others as cited).
    ///
    /// Values below 16384 are errors, the rest status types.
    pub enum NotifyType(u16) {
        UnsupportedCriticalPayload = 1,
        InvalidIkeSpi = 4,
        InvalidMajorVersion = 5,
        InvalidSyntax = 7,
        InvalidMessageId = 9,
        InvalidSpi = 11,
        NoProposalChosen = 14,
        InvalidKePayload = 17,
        AuthenticationFailed = 24,
        SinglePairRequired = 34,
        NoAdditionalSas = 35,
        InternalAddressFailure = 36,
        FailedCpRequired = 37,
        TsUnacceptable = 38,
        InvalidSelectors = 39,
        TemporaryFailure = 43,
        ChildSaNotFound = 44,
        InitialContact = 16384,
        SetWindowSize = 16385,
        AdditionalTsPossible = 16386,
        IpcompSupported = 16387,
        NatDetectionSourceIp = 16388,
        NatDetectionDestinationIp = 16389,
        Cookie = 16390,
        UseTransportMode = 16391,
        HttpCertLookupSupported = 16392,
        RekeySa = 16393,
        EspTfcPaddingNotSupported = 16394,
        NonFirstFragmentsAlso = 16395,
        /// RFC 4555 §4.
        MobikeSupported = 16396,
        /// RFC 4555 §4.
        AdditionalIp4Address = 16397,
        /// RFC 4555 §4.
        AdditionalIp6Address = 16398,
        /// RFC 4555 §4.
        NoAdditionalAddresses = 16399,
        /// RFC 4555 §4.
        UpdateSaAddresses = 16400,
        /// RFC 4555 §4.
        Cookie2 = 16401,
        /// RFC 4555 §4.
        NoNatsAllowed = 16402,
        /// RFC 4478.
        AuthLifetime = 16403,
        /// RFC 4739.
        MultipleAuthSupported = 16404,
        /// RFC 4739.
        AnotherAuthFollows = 16405,
        /// RFC 5685.
        RedirectSupported = 16406,
        /// RFC 5685.
        Redirect = 16407,
        /// RFC 5685.
        RedirectedFrom = 16408,
        /// RFC 5998.
        EapOnlyAuthentication = 16417,
        /// RFC 6023.
        ChildlessIkev2Supported = 16418,
        /// RFC 7383.
        Ikev2FragmentationSupported = 16430,
        /// RFC 7427.
        SignatureHashAlgorithms = 16431,
    }
}

impl NotifyType {
    /// Error types are 0..=16383 (RFC 7296 §3.10.1).
    pub fn is_error(self) -> bool {
        u16::from(self) < 16384
    }
}

enum_with_unknown! {
    /// Traffic selector types (RFC 7296 §3.13.1).
    pub enum TsType(u8) {
        Ipv4AddrRange = 7,
        Ipv6AddrRange = 8,
    }
}
