//! Directory people as EAS shows them (GAL results, resolved recipients): attribute lookup
//! by the names LDAP and other directories use.

use switchboard_sdk::Person;

/// The first attribute with one of `names` (case-insensitive), non-empty.
pub fn attr<'a>(p: &'a Person, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|n| {
        p.attributes
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(n) && !v.is_empty())
            .map(|(_, v)| v.as_str())
    })
}

/// Title.
pub fn title(p: &Person) -> Option<&str> {
    attr(p, &["title", "jobTitle"])
}
/// Company.
pub fn company(p: &Person) -> Option<&str> {
    attr(p, &["company", "o", "organization"])
}
/// Office.
pub fn office(p: &Person) -> Option<&str> {
    attr(p, &["office", "physicalDeliveryOfficeName", "l"])
}
/// Given name.
pub fn first_name(p: &Person) -> Option<&str> {
    attr(p, &["givenName", "firstName", "first_name"])
}
/// Surname.
pub fn last_name(p: &Person) -> Option<&str> {
    attr(p, &["sn", "surname", "lastName", "last_name"])
}
/// Mobile phone.
pub fn mobile(p: &Person) -> Option<&str> {
    attr(p, &["mobile", "mobilePhone", "mobileTelephoneNumber"])
}
/// Home phone.
pub fn home_phone(p: &Person) -> Option<&str> {
    attr(p, &["homePhone", "homeTelephoneNumber"])
}
/// The e-mail address to show: the person's address, else the login.
pub fn email(p: &Person) -> &str {
    if p.email.is_empty() {
        &p.login
    } else {
        &p.email
    }
}
/// The name to show.
pub fn display_name(p: &Person) -> &str {
    if p.display_name.is_empty() {
        email(p)
    } else {
        &p.display_name
    }
}
