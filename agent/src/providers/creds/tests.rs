//! Tests of the creds store against Debian's systemd-creds.
