//! CIP general status codes, and the extended codes Logix and the Connection Manager use.

/// A CIP general status. Anything but [`GeneralStatus::SUCCESS`] and
/// [`GeneralStatus::PARTIAL_TRANSFER`] reports a failure, but a status is data in a reply,
/// never a decode error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GeneralStatus(pub u8);

impl GeneralStatus {
    pub const SUCCESS: Self = Self(0x00);
    pub const CONNECTION_FAILURE: Self = Self(0x01);
    pub const RESOURCE_UNAVAILABLE: Self = Self(0x02);
    pub const INVALID_PARAMETER_VALUE: Self = Self(0x03);
    pub const PATH_SEGMENT_ERROR: Self = Self(0x04);
    pub const PATH_DESTINATION_UNKNOWN: Self = Self(0x05);
    pub const PARTIAL_TRANSFER: Self = Self(0x06);
    pub const CONNECTION_LOST: Self = Self(0x07);
    pub const SERVICE_NOT_SUPPORTED: Self = Self(0x08);
    pub const INVALID_ATTRIBUTE_VALUE: Self = Self(0x09);
    pub const ATTRIBUTE_LIST_ERROR: Self = Self(0x0A);
    pub const ALREADY_IN_REQUESTED_STATE: Self = Self(0x0B);
    pub const OBJECT_STATE_CONFLICT: Self = Self(0x0C);
    pub const OBJECT_ALREADY_EXISTS: Self = Self(0x0D);
    pub const ATTRIBUTE_NOT_SETTABLE: Self = Self(0x0E);
    pub const PRIVILEGE_VIOLATION: Self = Self(0x0F);
    pub const DEVICE_STATE_CONFLICT: Self = Self(0x10);
    pub const REPLY_DATA_TOO_LARGE: Self = Self(0x11);
    pub const FRAGMENTATION_OF_PRIMITIVE: Self = Self(0x12);
    pub const NOT_ENOUGH_DATA: Self = Self(0x13);
    pub const ATTRIBUTE_NOT_SUPPORTED: Self = Self(0x14);
    pub const TOO_MUCH_DATA: Self = Self(0x15);
    pub const OBJECT_DOES_NOT_EXIST: Self = Self(0x16);
    pub const SERVICE_FRAGMENTATION_OUT_OF_SEQUENCE: Self = Self(0x17);
    pub const NO_STORED_ATTRIBUTE_DATA: Self = Self(0x18);
    pub const STORE_OPERATION_FAILURE: Self = Self(0x19);
    pub const ROUTING_FAILURE_REQUEST_TOO_LARGE: Self = Self(0x1A);
    pub const ROUTING_FAILURE_RESPONSE_TOO_LARGE: Self = Self(0x1B);
    pub const MISSING_ATTRIBUTE_LIST_ENTRY: Self = Self(0x1C);
    pub const INVALID_ATTRIBUTE_VALUE_LIST: Self = Self(0x1D);
    pub const EMBEDDED_SERVICE_ERROR: Self = Self(0x1E);
    pub const VENDOR_SPECIFIC: Self = Self(0x1F);
    pub const INVALID_PARAMETER: Self = Self(0x20);
    pub const WRITE_ONCE_ALREADY_WRITTEN: Self = Self(0x21);
    pub const INVALID_REPLY_RECEIVED: Self = Self(0x22);
    pub const BUFFER_OVERFLOW: Self = Self(0x23);
    pub const MESSAGE_FORMAT_ERROR: Self = Self(0x24);
    pub const KEY_FAILURE_IN_PATH: Self = Self(0x25);
    pub const PATH_SIZE_INVALID: Self = Self(0x26);
    pub const UNEXPECTED_ATTRIBUTE_IN_LIST: Self = Self(0x27);
    pub const INVALID_MEMBER_ID: Self = Self(0x28);
    pub const MEMBER_NOT_SETTABLE: Self = Self(0x29);
    pub const GROUP_2_ONLY_SERVER_FAILURE: Self = Self(0x2A);
    pub const UNKNOWN_MODBUS_ERROR: Self = Self(0x2B);
    pub const ATTRIBUTE_NOT_GETTABLE: Self = Self(0x2C);
    pub const INSTANCE_NOT_DELETABLE: Self = Self(0x2D);
    pub const SERVICE_NOT_SUPPORTED_FOR_PATH: Self = Self(0x2E);
    pub const GENERAL_ERROR: Self = Self(0xFF);

    pub fn is_success(self) -> bool {
        self == Self::SUCCESS
    }

    /// Success, or success with more data to fetch (0x06).
    pub fn carries_data(self) -> bool {
        self == Self::SUCCESS || self == Self::PARTIAL_TRANSFER
    }

    /// The name of every code the CIP specification assigns; codes it reserves are named
    /// as such.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x00 => "success",
            0x01 => "connection failure",
            0x02 => "resource unavailable",
            0x03 => "invalid parameter value",
            0x04 => "path segment error",
            0x05 => "path destination unknown",
            0x06 => "partial transfer",
            0x07 => "connection lost",
            0x08 => "service not supported",
            0x09 => "invalid attribute value",
            0x0A => "attribute list error",
            0x0B => "already in requested mode/state",
            0x0C => "object state conflict",
            0x0D => "object already exists",
            0x0E => "attribute not settable",
            0x0F => "privilege violation",
            0x10 => "device state conflict",
            0x11 => "reply data too large",
            0x12 => "fragmentation of a primitive value",
            0x13 => "not enough data",
            0x14 => "attribute not supported",
            0x15 => "too much data",
            0x16 => "object does not exist",
            0x17 => "service fragmentation sequence not in progress",
            0x18 => "no stored attribute data",
            0x19 => "store operation failure",
            0x1A => "routing failure, request packet too large",
            0x1B => "routing failure, response packet too large",
            0x1C => "missing attribute list entry data",
            0x1D => "invalid attribute value list",
            0x1E => "embedded service error",
            0x1F => "vendor specific error",
            0x20 => "invalid parameter",
            0x21 => "write-once value or medium already written",
            0x22 => "invalid reply received",
            0x23 => "buffer overflow",
            0x24 => "message format error",
            0x25 => "key failure in path",
            0x26 => "path size invalid",
            0x27 => "unexpected attribute in list",
            0x28 => "invalid member id",
            0x29 => "member not settable",
            0x2A => "group 2 only server general failure",
            0x2B => "unknown Modbus error",
            0x2C => "attribute not gettable",
            0x2D => "instance not deletable",
            0x2E => "service not supported for specified path",
            0x2F..=0xCF => "reserved by CIP",
            0xD0..=0xFE => "object class specific error",
            0xFF => "general error",
        }
    }
}

impl std::fmt::Display for GeneralStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#04x} ({})", self.0, self.name())
    }
}

/// Logix extended status with general status 0xFF.
pub mod logix {
    pub const EXCESSIVE_IOI: u16 = 0x2001;
    pub const BAD_PARAMETER_VALUE: u16 = 0x2002;
    pub const SEMAPHORE_REJECT: u16 = 0x2018;
    pub const SIZE_TOO_SMALL: u16 = 0x201B;
    pub const INVALID_SIZE: u16 = 0x201C;
    pub const PRIVILEGE_FAILURE: u16 = 0x2100;
    pub const INVALID_KEYSWITCH_POSITION: u16 = 0x2101;
    pub const PASSWORD_INVALID: u16 = 0x2102;
    pub const NO_PASSWORD_ISSUED: u16 = 0x2103;
    pub const ADDRESS_OUT_OF_RANGE: u16 = 0x2104;
    pub const ACCESS_BEYOND_END: u16 = 0x2105;
    pub const DATA_IN_USE: u16 = 0x2106;
    pub const TYPE_MISMATCH: u16 = 0x2107;
    pub const UPLOAD_DOWNLOAD_MODE: u16 = 0x2108;
    pub const DIMENSION_CHANGE: u16 = 0x2109;
    pub const INVALID_SYMBOL_NAME: u16 = 0x210A;
    pub const SYMBOL_DOES_NOT_EXIST: u16 = 0x210B;
    pub const UNABLE_TO_WRITE: u16 = 0x2110;
    pub const UNABLE_TO_READ: u16 = 0x2111;
    pub const CONTROLLER_FAULTED: u16 = 0x2113;
}

/// Connection Manager extended status with general status 0x01.
pub mod cm {
    pub const CONNECTION_IN_USE: u16 = 0x0100;
    pub const TRANSPORT_TRIGGER_NOT_SUPPORTED: u16 = 0x0103;
    pub const OWNERSHIP_CONFLICT: u16 = 0x0106;
    pub const CONNECTION_NOT_FOUND: u16 = 0x0107;
    pub const INVALID_CONNECTION_PARAMETER: u16 = 0x0108;
    pub const INVALID_CONNECTION_SIZE: u16 = 0x0109;
    pub const TARGET_NOT_CONFIGURED: u16 = 0x0110;
    pub const RPI_NOT_SUPPORTED: u16 = 0x0111;
    pub const RPI_NOT_ACCEPTABLE: u16 = 0x0112;
    pub const OUT_OF_CONNECTIONS: u16 = 0x0113;
    pub const VENDOR_PRODUCT_MISMATCH: u16 = 0x0114;
    pub const DEVICE_TYPE_MISMATCH: u16 = 0x0115;
    pub const REVISION_MISMATCH: u16 = 0x0116;
    pub const TARGET_OUT_OF_CONNECTIONS: u16 = 0x011A;
    pub const TRANSPORT_CLASS_NOT_SUPPORTED: u16 = 0x011C;
    pub const TRIGGER_NOT_SUPPORTED: u16 = 0x011D;
    pub const DIRECTION_NOT_SUPPORTED: u16 = 0x011E;
    pub const INVALID_OT_CONNECTION_TYPE: u16 = 0x0123;
    pub const INVALID_TO_CONNECTION_TYPE: u16 = 0x0124;
    pub const INVALID_OT_SIZE: u16 = 0x0127;
    pub const INVALID_TO_SIZE: u16 = 0x0128;
    pub const CONNECTION_TIMED_OUT: u16 = 0x0203;
    pub const UNCONNECTED_REQUEST_TIMED_OUT: u16 = 0x0204;
    pub const UNCONNECTED_PARAMETER_ERROR: u16 = 0x0205;
    pub const MESSAGE_TOO_LARGE: u16 = 0x0206;
    pub const NO_BUFFER_MEMORY: u16 = 0x0301;
    pub const PORT_NOT_AVAILABLE: u16 = 0x0311;
    pub const LINK_ADDRESS_NOT_VALID: u16 = 0x0312;
    pub const INVALID_SEGMENT_IN_PATH: u16 = 0x0315;
    pub const PATH_MISMATCH: u16 = 0x0316;
}

/// The meaning of an extended status word, given its general status.
pub fn extended_name(general: GeneralStatus, extended: u16) -> Option<&'static str> {
    use cm::*;
    use logix::*;
    let name = match (general.0, extended) {
        (0xFF, EXCESSIVE_IOI) => "excessive IOI",
        (0xFF, BAD_PARAMETER_VALUE) => "bad parameter value",
        (0xFF, SEMAPHORE_REJECT) => "semaphore reject",
        (0xFF, SIZE_TOO_SMALL) => "size too small",
        (0xFF, INVALID_SIZE) => "invalid size",
        (0xFF, PRIVILEGE_FAILURE) => "privilege failure",
        (0xFF, INVALID_KEYSWITCH_POSITION) => "invalid keyswitch position",
        (0xFF, PASSWORD_INVALID) => "password invalid",
        (0xFF, NO_PASSWORD_ISSUED) => "no password issued",
        (0xFF, ADDRESS_OUT_OF_RANGE) => "address out of range",
        (0xFF, ACCESS_BEYOND_END) => "access beyond end of the object",
        (0xFF, DATA_IN_USE) => "data in use",
        (0xFF, TYPE_MISMATCH) => "data type does not match the tag",
        (0xFF, UPLOAD_DOWNLOAD_MODE) => "controller in upload or download mode",
        (0xFF, DIMENSION_CHANGE) => "attempt to change the number of array dimensions",
        (0xFF, INVALID_SYMBOL_NAME) => "invalid symbol name",
        (0xFF, SYMBOL_DOES_NOT_EXIST) => "symbol does not exist",
        (0xFF, UNABLE_TO_WRITE) => "unable to write",
        (0xFF, UNABLE_TO_READ) => "unable to read",
        (0xFF, CONTROLLER_FAULTED) => "controller faulted",
        (0x01, CONNECTION_IN_USE) => "connection in use or duplicate forward open",
        (0x01, TRANSPORT_TRIGGER_NOT_SUPPORTED) => "transport class and trigger not supported",
        (0x01, OWNERSHIP_CONFLICT) => "ownership conflict",
        (0x01, CONNECTION_NOT_FOUND) => "target connection not found",
        (0x01, INVALID_CONNECTION_PARAMETER) => "invalid network connection parameter",
        (0x01, INVALID_CONNECTION_SIZE) => "invalid connection size",
        (0x01, TARGET_NOT_CONFIGURED) => "target for connection not configured",
        (0x01, RPI_NOT_SUPPORTED) => "RPI not supported",
        (0x01, RPI_NOT_ACCEPTABLE) => "RPI value not acceptable",
        (0x01, OUT_OF_CONNECTIONS) => "out of connections",
        (0x01, VENDOR_PRODUCT_MISMATCH) => "vendor id or product code mismatch",
        (0x01, DEVICE_TYPE_MISMATCH) => "device type mismatch",
        (0x01, REVISION_MISMATCH) => "revision mismatch",
        (0x01, TARGET_OUT_OF_CONNECTIONS) => "target object out of connections",
        (0x01, TRANSPORT_CLASS_NOT_SUPPORTED) => "transport class not supported",
        (0x01, TRIGGER_NOT_SUPPORTED) => "production trigger not supported",
        (0x01, DIRECTION_NOT_SUPPORTED) => "direction not supported",
        (0x01, INVALID_OT_CONNECTION_TYPE) => "invalid O->T network connection type",
        (0x01, INVALID_TO_CONNECTION_TYPE) => "invalid T->O network connection type",
        (0x01, INVALID_OT_SIZE) => "invalid O->T connection size",
        (0x01, INVALID_TO_SIZE) => "invalid T->O connection size",
        (0x01, CONNECTION_TIMED_OUT) => "connection timed out",
        (0x01, UNCONNECTED_REQUEST_TIMED_OUT) => "unconnected request timed out",
        (0x01, UNCONNECTED_PARAMETER_ERROR) => "parameter error in unconnected request",
        (0x01, MESSAGE_TOO_LARGE) => "message too large for unconnected send",
        (0x01, NO_BUFFER_MEMORY) => "no buffer memory available",
        (0x01, PORT_NOT_AVAILABLE) => "port not available",
        (0x01, LINK_ADDRESS_NOT_VALID) => "link address not valid",
        (0x01, INVALID_SEGMENT_IN_PATH) => "invalid segment in connection path",
        (0x01, PATH_MISMATCH) => "forward close path mismatch",
        _ => return None,
    };
    Some(name)
}

/// A general status with its extended words, as it reads to a person:
/// `0xff (general error) [0x2105: access beyond end of the object]`.
pub fn describe(general: GeneralStatus, extended: &[u16]) -> String {
    let mut s = general.to_string();
    for &e in extended {
        match extended_name(general, e) {
            Some(n) => s.push_str(&format!(" [{e:#06x}: {n}]")),
            None => s.push_str(&format!(" [{e:#06x}]")),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_name() {
        for c in 0..=255u8 {
            assert!(!GeneralStatus(c).name().is_empty());
        }
        assert_eq!(
            describe(GeneralStatus(0xFF), &[0x2105]),
            "0xff (general error) [0x2105: access beyond end of the object]"
        );
        assert_eq!(
            describe(GeneralStatus(0x01), &[0x0109, 500]),
            "0x01 (connection failure) [0x0109: invalid connection size] [0x01f4]"
        );
    }
}
