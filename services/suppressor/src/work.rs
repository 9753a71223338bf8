//! From a published request to the work a connector sees: raw values decrypted only here, and
//! only where intake kept them.

use hush_contracts::connector::{RawValue, SuppressionWork, WorkIdentifier};
use hush_contracts::crypto::FieldCipher;
use hush_contracts::events::PrivacyRequest;

/// The connector's view of `request`. A raw value that does not decrypt is left out (the
/// connector then reports what it lacks) and logged without the value.
pub fn work_for(request: &PrivacyRequest, cipher: Option<&FieldCipher>) -> SuppressionWork {
    let identifiers = request
        .identifiers
        .iter()
        .map(|identifier| WorkIdentifier {
            kind: identifier.kind,
            sha256: identifier.sha256.clone(),
            raw: match (cipher, identifier.encrypted_value.as_deref()) {
                (Some(cipher), Some(sealed)) => match cipher.decrypt(sealed, &identifier.sha256) {
                    Ok(raw) => Some(RawValue::new(raw)),
                    Err(error) => {
                        tracing::warn!(%error, request_id = %request.request_id, kind = ?identifier.kind, "raw value not decrypted");
                        None
                    }
                },
                _ => None,
            },
        })
        .collect();
    SuppressionWork {
        request_id: request.request_id.clone(),
        subject_key: request.subject_key.clone(),
        kind: request.kind,
        identifiers,
        categories: request.categories.clone(),
        jurisdiction: request.jurisdiction.clone(),
        received_at: request.received_at,
    }
}
