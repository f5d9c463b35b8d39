//! What an account name may be: the rule shared by the commands that add accounts and
//! allow-lists and by the configuration's checks (`shield.protected`, `notify.from_user`).

/// A SIP user part we accept for an account: unreserved characters and the few
/// user-unreserved ones that cannot confuse a URI.
pub(crate) fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$".contains(&b))
}
