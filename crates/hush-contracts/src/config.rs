//! Errors in configuration and references to secrets: shared by the services and the
//! connectors, so a connector's settings fail the same way a service's do.

use serde::{Deserialize, Serialize};

/// A configuration error, naming the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be parsed or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A secret's environment variable is not set.
    #[error("secret `{setting}` expects environment variable `{var}`, which is not set")]
    MissingSecret {
        /// Setting that needs the secret.
        setting: String,
        /// Variable that should hold it.
        var: String,
    },
}

/// The name of an environment variable that holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// Reads the secret from the environment; `setting` names it in the error.
    pub fn resolve(&self, setting: &str) -> Result<String, ConfigError> {
        std::env::var(&self.0)
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ConfigError::MissingSecret {
                setting: setting.to_owned(),
                var: self.0.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_secret_names_the_variable() {
        let err = SecretRef("HUSH_TEST_SURELY_UNSET_VAR".into())
            .resolve("kafka.secret_properties.sasl.password")
            .unwrap_err();
        assert!(err.to_string().contains("HUSH_TEST_SURELY_UNSET_VAR"));
    }
}
