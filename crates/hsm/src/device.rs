//! What the module, its slot and its token say about themselves (`C_GetInfo`,
//! `C_GetSlotInfo`, `C_GetTokenInfo`), read live. The conformance suite sets this beside the
//! certification a profile declares: the profile is the operator's word, this is the device's.

use crate::HsmError;
use crate::hsm::Hsm;
use crate::rv::CallError;

/// A module's, slot's and token's self-description, as reported when asked. Versions are
/// written `major.minor`, as `CK_VERSION` holds them; text fields are trimmed of the blank
/// padding PKCS#11 uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// `C_GetInfo` `manufacturerID`: who made the module library.
    pub library_manufacturer: String,
    /// `C_GetInfo` `libraryDescription`.
    pub library_description: String,
    /// `C_GetInfo` `libraryVersion`.
    pub library_version: String,
    /// `C_GetInfo` `cryptokiVersion`.
    pub cryptoki_version: String,
    /// `C_GetSlotInfo` `slotDescription`.
    pub slot_description: String,
    /// `C_GetSlotInfo` `manufacturerID`.
    pub slot_manufacturer: String,
    /// `C_GetSlotInfo` `hardwareVersion`.
    pub slot_hardware_version: String,
    /// `C_GetSlotInfo` `firmwareVersion`.
    pub slot_firmware_version: String,
    /// `C_GetTokenInfo` `manufacturerID`.
    pub token_manufacturer: String,
    /// `C_GetTokenInfo` `model`.
    pub token_model: String,
    /// `C_GetTokenInfo` `serialNumber`.
    pub token_serial: String,
    /// `C_GetTokenInfo` `hardwareVersion`.
    pub token_hardware_version: String,
    /// `C_GetTokenInfo` `firmwareVersion`.
    pub token_firmware_version: String,
}

impl Hsm {
    /// Asks the module, the token's slot and the token to describe themselves. Every call is
    /// made now (nothing is cached), so the answer is the device's, not the profile's.
    pub fn device_info(&self) -> Result<DeviceInfo, HsmError> {
        let inner = self.inner();
        let module = inner.pool.module();
        let slot = inner.pool.slot();
        let fail = |function: &'static str, e: &cryptoki::error::Error| {
            module.unreachable_or(CallError::from_cryptoki(function, e))
        };
        let lib = module
            .ck
            .get_library_info()
            .map_err(|e| fail("C_GetInfo", &e))?;
        let s = module
            .ck
            .get_slot_info(slot)
            .map_err(|e| fail("C_GetSlotInfo", &e))?;
        let t = module
            .ck
            .get_token_info(slot)
            .map_err(|e| fail("C_GetTokenInfo", &e))?;
        let text = |v: &str| v.trim().to_string();
        Ok(DeviceInfo {
            library_manufacturer: text(lib.manufacturer_id()),
            library_description: text(lib.library_description()),
            library_version: lib.library_version().to_string(),
            cryptoki_version: lib.cryptoki_version().to_string(),
            slot_description: text(s.slot_description()),
            slot_manufacturer: text(s.manufacturer_id()),
            slot_hardware_version: s.hardware_version().to_string(),
            slot_firmware_version: s.firmware_version().to_string(),
            token_manufacturer: text(t.manufacturer_id()),
            token_model: text(t.model()),
            token_serial: text(t.serial_number()),
            token_hardware_version: t.hardware_version().to_string(),
            token_firmware_version: t.firmware_version().to_string(),
        })
    }
}
