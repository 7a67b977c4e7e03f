//! ActiveSync commands: names (plain query) and codes (base64 query, [MS-ASHTTP]
//! 2.2.1.1.1.1.2).

/// A command the client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Command {
    Sync,
    SendMail,
    SmartForward,
    SmartReply,
    GetAttachment,
    FolderSync,
    FolderCreate,
    FolderDelete,
    FolderUpdate,
    MoveItems,
    GetItemEstimate,
    MeetingResponse,
    Search,
    Settings,
    Ping,
    ItemOperations,
    Provision,
    ResolveRecipients,
    ValidateCert,
    Find,
}

/// Every command with its name and base64 code.
const TABLE: [(Command, &str, u8); 20] = [
    (Command::Sync, "Sync", 0),
    (Command::SendMail, "SendMail", 1),
    (Command::SmartForward, "SmartForward", 2),
    (Command::SmartReply, "SmartReply", 3),
    (Command::GetAttachment, "GetAttachment", 4),
    (Command::FolderSync, "FolderSync", 9),
    (Command::FolderCreate, "FolderCreate", 10),
    (Command::FolderDelete, "FolderDelete", 11),
    (Command::FolderUpdate, "FolderUpdate", 12),
    (Command::MoveItems, "MoveItems", 13),
    (Command::GetItemEstimate, "GetItemEstimate", 14),
    (Command::MeetingResponse, "MeetingResponse", 15),
    (Command::Search, "Search", 16),
    (Command::Settings, "Settings", 17),
    (Command::Ping, "Ping", 18),
    (Command::ItemOperations, "ItemOperations", 19),
    (Command::Provision, "Provision", 20),
    (Command::ResolveRecipients, "ResolveRecipients", 21),
    (Command::ValidateCert, "ValidateCert", 22),
    (Command::Find, "Find", 23),
];

/// The commands this server serves, as advertised in `MS-ASProtocolCommands` (OPTIONS).
pub const SERVED: [Command; 19] = [
    Command::Sync,
    Command::SendMail,
    Command::SmartForward,
    Command::SmartReply,
    Command::GetAttachment,
    Command::FolderSync,
    Command::FolderCreate,
    Command::FolderDelete,
    Command::FolderUpdate,
    Command::MoveItems,
    Command::GetItemEstimate,
    Command::MeetingResponse,
    Command::Search,
    Command::Settings,
    Command::Ping,
    Command::ItemOperations,
    Command::Provision,
    Command::ResolveRecipients,
    Command::ValidateCert,
];

impl Command {
    /// From the plain query's `Cmd=` value (case-sensitive, as the spec spells them).
    pub fn from_name(name: &str) -> Option<Command> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(c, _, _)| *c)
    }

    /// From the base64 query's command code.
    pub fn from_code(code: u8) -> Option<Command> {
        TABLE
            .iter()
            .find(|(_, _, k)| *k == code)
            .map(|(c, _, _)| *c)
    }

    /// The spec's name.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .map_or("?", |(_, n, _)| n)
    }

    /// Whether the device must hold an acknowledged policy key to run this command.
    /// Provision is how it gets one; Ping only waits for changes and is answered with a
    /// folder list the device then syncs (where the check applies).
    pub fn needs_policy(self) -> bool {
        !matches!(self, Command::Provision | Command::Ping)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (c, n, k) in TABLE {
            assert_eq!(Command::from_name(n), Some(c));
            assert_eq!(Command::from_code(k), Some(c));
            assert_eq!(c.name(), n);
        }
        assert_eq!(Command::from_name("sync"), None);
        assert_eq!(Command::from_code(5), None, "GetHierarchy is not served");
        assert_eq!(Command::from_code(24), None);
    }
}
