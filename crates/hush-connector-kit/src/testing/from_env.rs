//! The start-up test of a connector whose credentials are named in the `[[recipients]]` block
//! and read from the environment, declared by [`credentials_from_env_test!`](crate::credentials_from_env_test).

/// Declares `#[test] fn builds_with_credentials_from_env()`: connector `$connector` is built by
/// `$factory` from the crate's `tests/fixtures/recipient.toml`, refused while the first variable
/// of `$env` (`&[(name, value)]`) is unset and built once every one holds its value (see
/// [`builds_with_credentials_from_env`](crate::testing::builds_with_credentials_from_env)),
/// and `$factory` serves exactly the kinds `$kinds`. The test sets environment variables, so it
/// belongs in a test binary of its own (`tests/from_env.rs`).
#[macro_export]
macro_rules! credentials_from_env_test {
    ($connector:ty, $factory:path, $kinds:expr, $env:expr $(,)?) => {
        #[test]
        fn builds_with_credentials_from_env() {
            $crate::testing::builds_with_credentials_from_env::<$connector>(
                &$factory,
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/recipient.toml"
                )),
                $env,
            );
            assert_eq!($factory.kinds, $kinds);
        }
    };
}
