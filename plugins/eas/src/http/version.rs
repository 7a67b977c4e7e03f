//! ActiveSync protocol versions and their negotiation ([MS-ASHTTP] 2.2.1.1.2.6).

use std::fmt;

/// The protocol versions this server speaks, oldest first.
pub const SUPPORTED: [Version; 5] = [
    Version::V12_1,
    Version::V14_0,
    Version::V14_1,
    Version::V16_0,
    Version::V16_1,
];

/// The `MS-ASProtocolVersions` header value.
pub const SUPPORTED_HEADER: &str = "12.1,14.0,14.1,16.0,16.1";

/// A protocol version the server supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 12.1 (Exchange 2007 SP1): policy errors are HTTP 449.
    V12_1,
    /// 14.0 (Exchange 2010).
    V14_0,
    /// 14.1 (Exchange 2010 SP1).
    V14_1,
    /// 16.0 (Exchange 2016).
    V16_0,
    /// 16.1 (Exchange 2016 CU/2019).
    V16_1,
}

impl Version {
    /// Parse the header form (`"14.1"`); `None` for anything unsupported.
    pub fn from_header(s: &str) -> Option<Version> {
        Some(match s.trim() {
            "12.1" => Version::V12_1,
            "14.0" => Version::V14_0,
            "14.1" => Version::V14_1,
            "16.0" => Version::V16_0,
            "16.1" => Version::V16_1,
            _ => return None,
        })
    }

    /// Parse the base64 query form: one byte, major × 10 + minor (`141` for 14.1).
    pub fn from_byte(b: u8) -> Option<Version> {
        Some(match b {
            121 => Version::V12_1,
            140 => Version::V14_0,
            141 => Version::V14_1,
            160 => Version::V16_0,
            161 => Version::V16_1,
            _ => return None,
        })
    }

    /// The header form.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V12_1 => "12.1",
            Version::V14_0 => "14.0",
            Version::V14_1 => "14.1",
            Version::V16_0 => "16.0",
            Version::V16_1 => "16.1",
        }
    }

    /// 14.0 and later report policy and wipe problems as command `Status` values
    /// (142/144/140) instead of HTTP 449.
    pub fn has_common_status(self) -> bool {
        self >= Version::V14_0
    }

    /// 16.0 and later (calendar and draft changes, `AccountOnlyRemoteWipe` from 16.1).
    pub fn is_16(self) -> bool {
        self >= Version::V16_0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_byte_forms_agree() {
        for v in SUPPORTED {
            assert_eq!(Version::from_header(v.as_str()), Some(v));
            let byte = v.as_str().replace('.', "").parse::<u8>().unwrap();
            assert_eq!(Version::from_byte(byte), Some(v));
        }
        let joined: Vec<&str> = SUPPORTED.iter().map(|v| v.as_str()).collect();
        assert_eq!(joined.join(","), SUPPORTED_HEADER);
    }

    #[test]
    fn unsupported_versions_are_refused() {
        for s in ["2.5", "12.0", "16.2", "", "14", "abc"] {
            assert_eq!(Version::from_header(s), None, "{s}");
        }
        for b in [25, 120, 162, 0, 255] {
            assert_eq!(Version::from_byte(b), None, "{b}");
        }
        assert!(!Version::V12_1.has_common_status());
        assert!(Version::V14_0.has_common_status());
    }
}
